from tandem.demo.logparse import parse_line, parse_lines


def test_key_value_line() -> None:
    line = ("timestamp='2026-11-23T19:56:18.723229Z' level='info' event='step' step=40 loss='2.82389760017395'"
            " tokens_per_s=5210.3 mfu=None lr='0.0003' rank=0")
    record = parse_line(line)
    assert record is not None
    assert (record.event, record.step, record.rank) == ("step", 40, 0)
    assert record.loss == 2.82389760017395
    assert record.fields["mfu"] is None and record.fields["tokens_per_s"] == 5210.3
    assert abs(record.time - 1795463778.723229) < 1e-6


def test_quoted_values_with_escapes_and_spaces() -> None:
    line = (r"""timestamp='2026-11-23T19:56:18Z' level='error' event='worker_fault' reason='HcclSocketTimeout'"""
            r""" error='EI0006: it\'s "gone" now' step=11 rank=1""")
    record = parse_line(line)
    assert record is not None
    assert record.fields["error"] == """EI0006: it's "gone" now"""
    assert record.fields["reason"] == "HcclSocketTimeout" and record.rank == 1 and record.loss is None


def test_json_line() -> None:
    record = parse_line('{"timestamp": "2026-11-23T19:56:18Z", "event": "resumed", "step": 8, "rank": 3}')
    assert record is not None and (record.event, record.step, record.rank) == ("resumed", 8, 3)


def test_other_lines_are_skipped() -> None:
    text = "\n".join(["Traceback (most recent call last):", "  File 'x.py', line 1", "", "{not json",
                      "timestamp='bad' event='step'", "event='step' step=1",
                      "timestamp='2026-11-23T19:56:18Z' level='info' event='training_start' world=4 rank=0"])
    records = parse_lines(text)
    assert [r.event for r in records] == ["training_start"]
    assert records[0].step is None
