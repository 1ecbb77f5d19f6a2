"""The kernel's filter events (kernels/events.py): loads, blocks, suppressions and refusals
leave the kernel as ``enclave_event`` messages on IOPub, with the rule and the table's shape
and never a value; the kernel writes no file and no database."""

from __future__ import annotations

import json

from tests.filter_fixtures import session, truth  # noqa: F401


def test_a_load_is_an_event_with_the_table_and_its_shape(session, truth):  # noqa: F811
    out = session.run("df2 = data.load('k12_enrollment')")
    [load] = [e for e in out.events if e["event"] == "data.load"]
    assert load["details"]["table"] == "k12_enrollment"
    assert "student_key" in load["details"]["columns"] and load["details"]["rows"] > 100


def test_a_blocked_frame_is_an_event_without_its_values(session, truth):  # noqa: F811
    out = session.run("cell")
    [blocked] = [e for e in out.events if e["event"] == "output.blocked"]
    assert blocked["details"]["rule"] == "record-level data"
    assert blocked["details"]["rows"] == "fewer than 10"  # a small group: only the bound
    assert truth["key"] not in json.dumps(out.events)


def test_a_suppression_is_an_event_with_the_rule_and_shape(session, truth):  # noqa: F811
    out = session.run("table")
    [suppressed] = [e for e in out.events if e["event"] == "output.suppressed"]
    assert suppressed["details"]["cells"] >= 1
    assert suppressed["details"]["shape"][0] == 1
    assert "fewer than 10" in suppressed["details"]["rule"]


def test_a_refusal_is_an_event(session):  # noqa: F811
    out = session.run("df.student_key.tolist()")
    assert any(e["event"] == "output.refused" for e in out.events), out.events
