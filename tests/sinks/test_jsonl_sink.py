from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardrail.alerts import compose_alert
from guardrail.findings import FindingRecord
from guardrail.sinks.jsonl import JsonlSink, LogSink

MakeRecord = Callable[..., FindingRecord]


def test_jsonl_appends_one_line_per_record(tmp_path: Path, make_record: MakeRecord) -> None:
    sink = JsonlSink(tmp_path / "out" / "findings.jsonl")
    first = [make_record(rule="default-action-deny"), make_record(rule="bypass-not-allowed")]
    assert sink.send(first).count == 2
    assert sink.send([make_record(rule="local-auth-enabled")]).delivered
    alert = compose_alert(first)
    assert alert is not None and sink.send_alert(alert).delivered
    lines = sink.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    assert [json.loads(x)["Rule"] for x in lines[:3]] == [
        "default-action-deny",
        "bypass-not-allowed",
        "local-auth-enabled",
    ]
    assert json.loads(lines[3])["type"] == "guardrail.alert"
    assert sink.read() == [*first, make_record(rule="local-auth-enabled")]


def test_jsonl_failure_is_reported_not_raised(tmp_path: Path, make_record: MakeRecord) -> None:
    (tmp_path / "blocker").write_text("a file, not a directory")
    result = JsonlSink(tmp_path / "blocker" / "findings.jsonl").send([make_record()])
    assert not result.delivered and result.failed == 1


def test_log_sink_writes_structured_lines(make_record: MakeRecord, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="guardrail.findings"):
        LogSink().send([make_record(rule="default-action-deny"), make_record(rule="bypass-not-allowed")])
    rows = [json.loads(r.getMessage()) for r in caplog.records if r.name == "guardrail.findings"]
    assert [r["record"]["Rule"] for r in rows] == ["default-action-deny", "bypass-not-allowed"]
    assert all(r["type"] == "guardrail.finding" for r in rows)


# -- one record, one line, whatever the event put in it ----------------------------------------

ODD = "jane\u2028forged\x85line\u202eevil\U000e0041\x7f\x1b[2J\n@contoso.example"


def _one_line(text: str) -> bool:
    return not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def test_odd_characters_in_a_record_stay_on_its_line(
    tmp_path: Path, make_record: MakeRecord, caplog: pytest.LogCaptureFixture
) -> None:
    odd = make_record(actor=ODD, message="IP rule\u2029 20.0.0.0/8")
    sink = JsonlSink(tmp_path / "findings.jsonl")
    assert sink.send([odd, make_record()]).delivered
    text = sink.path.read_text(encoding="utf-8")
    assert len(text.splitlines()) == 2 and _one_line(text.replace("\n", ""))
    assert sink.read() == [odd, make_record()]  # str.splitlines would split at U+2028 and U+0085
    with caplog.at_level(logging.INFO, logger="guardrail.findings"):
        LogSink().send([odd])
    (line,) = [r.getMessage() for r in caplog.records if r.name == "guardrail.findings"]
    assert _one_line(line) and json.loads(line)["record"]["Actor"] == ODD


@given(
    st.recursive(
        st.none() | st.text() | st.integers(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_json_line_is_one_line_of_the_same_json(value: object) -> None:
    from guardrail.escaping import json_line

    line = json_line(value)
    assert _one_line(line) and json.loads(line) == value


def test_printable_text_has_no_character_to_escape() -> None:
    """`has_control`'s fast path answers printable text at once: every character of the unsafe
    categories (Cc, Cf, Zl, Zp) is one `str.isprintable` refuses, over all of Unicode."""
    import sys
    import unicodedata

    from guardrail.escaping import _UNSAFE_CATEGORIES, has_control

    unsafe = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in _UNSAFE_CATEGORIES]
    assert unsafe and not any(ch.isprintable() for ch in unsafe)
    assert all(has_control(f"a{ch}b") for ch in unsafe)
    assert not has_control("plain, printable: é ✓ 中文") and has_control("tab\there")
