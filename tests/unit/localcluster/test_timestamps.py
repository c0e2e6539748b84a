"""Times of built-in objects decoded and encoded again as the API server does (metav1.Time, metav1.MicroTime)."""

from __future__ import annotations

import pytest

from tandem.localcluster.errors import KubernetesError
from tandem.localcluster.tables import human_age
from tandem.localcluster.timestamps import TimeParseError, normalise, normalise_object, time_fields


@pytest.mark.parametrize(("sent", "stored"), [
    ("2026-12-02T10:00:00Z", "2026-12-02T10:00:00Z"),
    ("2026-12-02T10:00:00+00:00", "2026-12-02T10:00:00Z"),  # Python's isoformat(), kopf's and the client's
    ("2026-12-02T12:30:00+02:30", "2026-12-02T10:00:00Z"),
    ("2026-12-02T10:00:00.987654+00:00", "2026-12-02T10:00:00Z"),  # Time keeps whole seconds
    ("2026-12-02T10:00:00,5Z", "2026-12-02T10:00:00Z"),
])
def test_time_accepts_rfc3339_and_stores_utc_seconds(sent: str, stored: str) -> None:
    assert normalise(sent) == stored


def test_micro_time_wants_six_fractional_digits() -> None:
    assert normalise("2026-12-02T12:00:00.123456+02:00", micro=True) == "2026-12-02T10:00:00.123456Z"
    with pytest.raises(TimeParseError) as exc:
        normalise("2026-12-02T10:00:00+00:00", micro=True)  # what datetime.isoformat() gives at .000000
    assert str(exc.value) == ('parsing time "2026-12-02T10:00:00+00:00" as "2006-01-02T15:04:05.000000Z07:00": '
                              'cannot parse "+00:00" as ".000000"')


@pytest.mark.parametrize(("sent", "message"), [
    ("garbage", 'parsing time "garbage" as "2006-01-02T15:04:05Z07:00": cannot parse "garbage" as "2006"'),
    ("2026-12-02 10:00:00Z",
     'parsing time "2026-12-02 10:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse " 10:00:00Z" as "T"'),
    ("2026-12-02T10:00:00", 'parsing time "2026-12-02T10:00:00" as "2006-01-02T15:04:05Z07:00": cannot parse "" as '
                            '"Z07:00"'),
    ("2026-13-02T10:00:00Z", 'parsing time "2026-13-02T10:00:00Z": month out of range'),
    ("2026-02-30T10:00:00Z", 'parsing time "2026-02-30T10:00:00Z": day out of range'),
    ("2026-12-02T10:00:00Zjunk", 'parsing time "2026-12-02T10:00:00Zjunk": extra text: "junk"'),
])
def test_unparsable_times_get_gos_message(sent: str, message: str) -> None:
    with pytest.raises(TimeParseError) as exc:
        normalise(sent)
    assert str(exc.value) == message


def test_the_time_fields_of_a_kind_come_from_its_schema() -> None:
    fields = dict(time_fields("Event", "v1"))
    assert fields[("firstTimestamp",)] is False and fields[("eventTime",)] is True
    assert fields[("series", "lastObservedTime")] is True
    assert dict(time_fields("Pod", "v1"))[("status", "conditions", "[]", "lastTransitionTime")] is False
    assert dict(time_fields("Lease", "coordination.k8s.io/v1"))[("spec", "renewTime")] is True


def test_an_object_is_normalised_or_refused_with_400() -> None:
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
             "firstTimestamp": "2026-12-02T10:00:00+00:00", "lastTimestamp": None,
             "eventTime": "2026-12-02T10:00:00.500000+00:00"}
    stored = normalise_object("Event", event)
    assert (stored["firstTimestamp"], stored["lastTimestamp"], stored["eventTime"]) == (
        "2026-12-02T10:00:00Z", None, "2026-12-02T10:00:00.500000Z")
    with pytest.raises(KubernetesError) as exc:
        normalise_object("Event", {**event, "lastTimestamp": "yesterday"})
    assert exc.value.status == 400 and exc.value.message.startswith(
        'Event in version "v1" cannot be handled as a Event: parsing time "yesterday"')


def test_ages_read_any_rfc3339_time() -> None:
    assert human_age("2020-01-01T00:00:00+00:00") == human_age("2020-01-01T00:00:00Z")
    assert human_age("not a time") == "not a time"  # a custom date column shows what it holds
