"""Which replica acts: kopf's peering rule applied to the peering object's status, and the gate the
operator's own timers consult (cached, conservative when the object or the API is missing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tandem.operator.peering import Peering, PeeringGate, outranking_peers

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
ME, PRIORITY = "tandem-7d9f-abcde", 500


def record(priority: int, seen_ago: float = 1.0, lifetime: int = 60) -> dict[str, Any]:
    """A peer's entry as kopf writes it (Peer.as_dict)."""
    return {"priority": priority, "lifetime": lifetime, "lastseen": (NOW - timedelta(seconds=seen_ago)).isoformat()}


@pytest.mark.parametrize(("status", "outranking"), [
    ({}, []),
    ({ME: record(PRIORITY)}, []),  # alone in the peering (our own record never counts)
    ({ME: record(PRIORITY), "other": record(100)}, []),  # we are the highest
    ({ME: record(PRIORITY), "other": record(900)}, ["other"]),  # a higher peer works; we stand by
    ({"other": record(900)}, ["other"]),  # before our own keep-alive landed
    ({ME: record(PRIORITY), "twin": record(PRIORITY)}, ["twin"]),  # equal: kopf pauses both
    ({ME: record(PRIORITY), "gone": record(900, seen_ago=61)}, []),  # lifetime over: presumed dead
    ({ME: record(PRIORITY), "exited": record(900, lifetime=0)}, []),  # kopf's farewell touch
    ({ME: record(PRIORITY), "junk": {"priority": "high"}, "half": None}, []),  # not a record kopf acts on
    ({"naive": {"priority": 900, "lifetime": 60, "lastseen": "2026-11-23T11:59:59"}}, ["naive"]),  # UTC assumed
])
def test_kopfs_rule_picks_who_outranks_us(status: dict[str, Any], outranking: list[str]) -> None:
    assert outranking_peers(status, ME, PRIORITY, NOW) == outranking


class FakePeerings:
    def __init__(self, objects: dict[str | None, dict[str, Any] | None]) -> None:
        self.objects, self.reads, self.fail = objects, 0, False

    def get_peering(self, name: str, namespace: str | None) -> dict[str, Any] | None:
        self.reads += 1
        if self.fail:
            raise ApiException(status=503, reason="Service Unavailable")
        assert name == "tandem"
        return self.objects.get(namespace)


def gate(objects: dict[str | None, dict[str, Any] | None], namespaces: tuple[str, ...] = ()
         ) -> tuple[PeeringGate, FakePeerings, list[float]]:
    kube, clock = FakePeerings(objects), [0.0]
    peering = Peering("tandem", ME, PRIORITY, namespaces)
    return PeeringGate(kube, peering, ttl=2.0, clock=lambda: clock[0], now=lambda: NOW), kube, clock


def test_a_standalone_operator_always_acts_and_reads_nothing() -> None:
    kube = FakePeerings({})
    assert PeeringGate(kube, None).active() and kube.reads == 0


def test_the_highest_replica_acts_and_a_lower_one_stands_by() -> None:
    assert gate({None: {ME: record(PRIORITY), "other": record(100)}})[0].active()
    assert not gate({None: {ME: record(PRIORITY), "other": record(900)}})[0].active()


def test_the_verdict_is_reused_for_the_ttl_then_read_again() -> None:
    peerings = {None: {ME: record(PRIORITY), "other": record(900)}}
    subject, kube, clock = gate(peerings)
    assert not subject.active() and not subject.active() and kube.reads == 1
    peerings[None] = {ME: record(PRIORITY)}  # the working replica exited
    clock[0] = 2.5
    assert subject.active() and kube.reads == 2


def test_a_missing_peering_object_means_stand_by_as_kopf_does() -> None:
    assert not gate({None: None})[0].active()


def test_an_unreadable_api_keeps_the_last_verdict_and_starts_standing_by() -> None:
    subject, kube, clock = gate({None: {ME: record(PRIORITY)}})
    kube.fail = True
    assert not subject.active()  # nothing known yet: acting could double the work
    kube.fail, clock[0] = False, 3.0
    assert subject.active()
    kube.fail, clock[0] = True, 6.0
    assert subject.active()  # a blip does not stop the working replica


def test_a_namespaced_operator_acts_only_where_no_peer_outranks_it_in_any_namespace() -> None:
    mine = {ME: record(PRIORITY)}
    assert gate({"default": mine, "research": mine}, ("default", "research"))[0].active()
    assert not gate({"default": mine, "research": {**mine, "other": record(900)}}, ("default", "research"))[0].active()
