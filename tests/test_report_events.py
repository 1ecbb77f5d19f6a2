"""A report kernel's filter events reach the audit log: the runner collects them from the
kernel's IOPub (no user server in between), tags them with the run and records them under the
command's user; the rule and the table's shape, never a value, and nothing the kernel claims
about who or which run it is."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from click.testing import CliRunner

from hub.audit import AuditLog
from hub.cli import enclave
from hub.cli.errors import actor
from templates import runner
from templates.kernel_events import tagged
from warehouse.db import connect
from warehouse.read import read_table


def students(state: Path) -> pd.DataFrame:
    engine = connect(f"sqlite:///{state / 'warehouse.db'}")
    return read_table(engine, "cc_students", ["institution", "year", "student_key", "ethnicity", "gender"])


@pytest.fixture
def suppressing_template(tmp_path, monkeypatch) -> str:
    """A template that shows a crosstab with small cells, a record-level frame (blocked),
    sends an event claiming another user and another run, and tampers with the filter."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "enclave", "display_name": "Python 3 (Enclave)", "language": "python"}
    notebook.metadata["enclave"] = {"title": "Small cells", "segment": "cc", "description": "suppresses"}
    parameters = nbformat.v4.new_code_cell('institution = "ALL"')
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        parameters,
        nbformat.v4.new_code_cell(
            "import pandas as pd\n"
            "from kernels import data\n"
            "students = data.load('cc_students', ['institution', 'year', 'student_key', 'ethnicity', 'gender'])\n"
            "pd.crosstab(students.ethnicity, students.gender)"
        ),
        nbformat.v4.new_code_cell("students.head()"),
        nbformat.v4.new_code_cell(
            "from kernels import events\n"
            "events.record('output.suppressed', rule='forged', user='someone-else', actor='someone-else',\n"
            "              report_run='not-this-run', template='other', shape=[1, 1], cells=1)"
        ),
        nbformat.v4.new_code_cell("import os\nos.write(1, b'rows\\n')"),  # tampering
    ]
    folder = tmp_path / "templates"
    folder.mkdir()
    nbformat.write(notebook, folder / "small_cells.ipynb")
    monkeypatch.setattr(runner, "TEMPLATES_DIR", folder)
    return "small_cells"


def test_a_cli_report_run_records_its_kernels_filter_events(suppressing_template, demo_copy, tmp_path):
    truth = students(demo_copy)
    table = pd.crosstab(truth.ethnicity, truth.gender)
    small = [int(v) for v in table.to_numpy().ravel() if 0 < v < 10]
    assert small, "the demo should give this crosstab small cells"

    result = CliRunner().invoke(enclave, ["report", "run", suppressing_template, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output

    log = AuditLog().events()
    [run] = [e for e in log if e.event == "report.run"]
    ours = [e for e in log if e.event.startswith("kernel.")]
    assert ours and all(e.actor == actor() == run.actor for e in ours)
    assert {e.details["report_run"] for e in ours} == {run.details["run"]}
    assert all(e.details["template"] == suppressing_template and e.details["institution"] == "ALL" for e in ours)

    [load] = [e for e in ours if e.event == "kernel.data.load"]
    assert load.details["table"] == "cc_students" and load.details["rows"] == len(truth)
    suppressed = [e for e in ours if e.event == "kernel.output.suppressed" and e.details["rule"] != "forged"]
    assert suppressed, [e.event for e in ours]
    for event in suppressed:
        assert event.details["shape"] == list(table.shape)
        assert event.details["cells"] >= len(small)
        assert "fewer than 10" in event.details["rule"]
        assert set(event.details) == {"rule", "shape", "cells", "report_run", "template", "institution"}
    [blocked] = [e for e in ours if e.event == "kernel.output.blocked"]
    assert blocked.details["rule"] == "record-level data" and blocked.details["rows"] == "fewer than 10"

    [tamper] = [e for e in ours if e.event == "kernel.tamper"]
    assert tamper.details["what"] == "os.write to the kernel's standard streams"

    # What the kernel claimed of itself: recorded, but under the command's user and this run.
    [forged] = [e for e in ours if e.details.get("rule") == "forged"]
    assert forged.actor == actor() and "user" not in forged.details and "actor" not in forged.details
    assert forged.details["report_run"] == run.details["run"] and forged.details["template"] == suppressing_template
    assert AuditLog().events(user="someone-else") == []

    # No value: no student key, no label of the table, only the note the reader saw.
    text = json.dumps([e.details for e in log])
    assert not any(key in text for key in truth.student_key)
    kernel_text = json.dumps([e.details for e in ours])
    assert not any(str(label) in kernel_text for label in [*table.index, *table.columns])  # no row, no column
    shown = nbformat.read(tmp_path / "out" / f"{suppressing_template}.ipynb", as_version=4)
    notes = [o["data"]["text/plain"] for o in shown.cells[1].outputs if "data" in o]
    assert all(event.details["rule"] in notes[0] for event in suppressed)  # the note the reader saw, no more


def test_a_failed_run_and_its_events_are_on_the_record(demo_copy, tmp_path, monkeypatch):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "enclave", "display_name": "Python 3 (Enclave)", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_code_cell("from kernels import data\nstudents = data.load('cc_students', ['student_key'])"),
        nbformat.v4.new_code_cell("students.head()"),
        nbformat.v4.new_code_cell("raise ValueError('stop here')"),
    ]
    folder = tmp_path / "templates"
    folder.mkdir()
    nbformat.write(notebook, folder / "stops.ipynb")
    monkeypatch.setattr(runner, "TEMPLATES_DIR", folder)
    result = CliRunner().invoke(enclave, ["report", "run", "stops", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "ValueError: stop here" in result.output
    log = AuditLog().events()
    [run] = [e for e in log if e.event == "report.run"]
    assert "ValueError: stop here" in run.details["failed"]
    ours = {e.event: e for e in log if e.event.startswith("kernel.")}
    assert {"kernel.data.load", "kernel.output.blocked"} <= set(ours)
    assert {e.details["report_run"] for e in ours.values()} == {run.details["run"]}


def test_the_run_names_itself_whatever_the_kernel_wrote():
    collected = [
        {"event": "tamper", "details": {"what": "x", "report_run": "other", "institution": "Z9", "event": "e"}}
    ]
    [event] = tagged(collected, "abc", "persistence", "CC01")
    assert event == {
        "event": "tamper",
        "details": {"what": "x", "report_run": "abc", "template": "persistence", "institution": "CC01"},
    }


@pytest.mark.parametrize(
    ("posted", "expected"),
    [
        (
            {"event": "output.suppressed", "details": {"rule": "r", "shape": [2, 3]}},
            ("kernel.output.suppressed", {"rule": "r", "shape": [2, 3]}),
        ),
        (
            {"event": "tamper", "details": {"what": "x", "user": "bob", "actor": "bob", "name": "n"}},
            ("kernel.tamper", {"what": "x"}),
        ),
        ({"event": "release.approve", "details": {}}, None),
        ({"event": "data.load", "details": "not a map"}, ("kernel.data.load", {"details": "not a map"})),
        ("not an event", None),
    ],
    ids=["kept", "who-is-the-recorders", "not-a-filter-event", "odd-details", "not-a-map"],
)
def test_both_paths_keep_the_same_events(posted, expected):
    """The hub's handler and the report runner's sink share ``hub.kernel_events.audit_entry``."""
    from hub.kernel_events import audit_entry

    assert audit_entry(posted) == expected


def test_outside_a_kernel_the_default_sink_leaves_the_events_to_the_caller(isolated_state):
    """No kernel to send them through (a script, a test): nothing is written; the events are in
    the run's result."""
    from templates.kernel_events import forward_from_kernel

    forward_from_kernel([{"event": "output.suppressed", "details": {"rule": "r"}}])
    assert not (isolated_state / "logs" / "filter-events.log").exists()
