"""Report templates: parameters, the secure kernel, the HTML without code."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from hub.audit import AuditLog
from hub.cli import enclave
from templates import runner
from templates.exceptions import TemplateError
from warehouse.db import connect
from warehouse.read import read_table

SEASONS = {"WI": "Winter", "SP": "Spring", "SU": "Summer", "FA": "Fall"}


def members(state: Path) -> dict[str, list[str]]:
    manifest = json.loads((state / "demo" / "manifest.json").read_text())
    by_segment: dict[str, list[str]] = {}
    for member in manifest["members"]:
        by_segment.setdefault(member["segment"], []).append(member["code"])
    return by_segment


def true_counts(state: Path, years: list[str]) -> pd.DataFrame:
    """The report's enrollment counts computed with plain pandas, outside any filter."""
    engine = connect(f"sqlite:///{state / 'warehouse.db'}")
    courses = read_table(engine, "cc_courses")
    students = read_table(engine, "cc_students", ["institution", "year", "student_key", "ethnicity"])
    courses = courses[courses.year.isin(years)]
    merged = courses.merge(students, on=["institution", "year", "student_key"], how="left")
    merged["ethnicity"] = merged["ethnicity"].fillna("Not Reported")
    merged["term"] = merged["term"].map(lambda t: f"{SEASONS[t[4:]]} {t[:4]}")
    return pd.crosstab(merged.term, merged.ethnicity)


def html_table(html: str, index: int) -> pd.DataFrame:
    table = BeautifulSoup(html, "html.parser").find_all("table")[index]
    header = [th.get_text(strip=True) for th in table.find("thead").find_all("tr")[0].find_all("th")][1:]
    rows = {}
    for tr in table.find("tbody").find_all("tr"):
        rows[tr.find("th").get_text(strip=True)] = [td.get_text(strip=True) for td in tr.find_all("td")]
    return pd.DataFrame.from_dict(rows, orient="index", columns=header)


def test_templates_are_listed_with_their_parameters():
    (template,) = [t for t in runner.list_templates() if t.name == "course_success"]
    assert {p.name: p.default for p in template.parameters} == {
        "institution": "ALL",
        "years": ["2023-24", "2024-25", "2025-26"],
    }
    assert template.segment == "cc"


def test_course_success_report_suppresses_small_cells(use_demo, tmp_path):
    years = ["2023-24", "2024-25"]
    result = runner.run_report("course_success", {"years": ",".join(years)}, tmp_path / "out")
    assert result.parameters == {"years": years}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["course_success.html", "course_success.ipynb"]

    html = result.html.read_text()
    assert "data.load" not in html and "def term_label" not in html  # no code in the HTML
    assert "Course success rate by term and ethnicity" in html

    truth = true_counts(use_demo, years)
    shown = html_table(html, 1)  # graded enrollments
    small = [(t, e) for t in truth.index for e in truth.columns if 0 < truth.loc[t, e] < 10]
    assert small, "the demo should give the report small cells"
    for term, ethnicity in small:
        assert shown.loc[term, ethnicity] == "*"
    for term in truth.index:
        for ethnicity in truth.columns:
            if shown.loc[term, ethnicity] != "*":
                assert int(shown.loc[term, ethnicity]) == truth.loc[term, ethnicity]

    rates = html_table(html, 0)
    hidden_counts = shown == "*"
    assert (rates[hidden_counts] == "*").where(hidden_counts, True).all().all()  # no rate beside a hidden count
    executed = nbformat.read(result.notebook, as_version=4)
    assert executed.metadata["papermill"]["parameters"] == {"years": years}


def test_one_college(use_demo, tmp_path):
    college = members(use_demo)["cc"][0]
    result = runner.run_report("course_success", {"institution": college}, tmp_path)
    assert f"college {college}" in result.html.read_text()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"colour": "red"}, "has no parameter 'colour'; its parameters: institution, years"),
        ({"institution": "NOSUCH"}, "enclave institution list"),
        ({"years": "2024"}, "not an academic year such as 2023-24"),
    ],
    ids=["unknown-parameter", "unknown-institution", "bad-year"],
)
def test_bad_parameters_are_refused_before_running(use_demo, tmp_path, given, message):
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        runner.run_report("course_success", given, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_institution_of_the_wrong_segment_is_refused(use_demo, tmp_path):
    district = members(use_demo)["k12"][0]
    with pytest.raises(TemplateError, match="reports on community colleges"):
        runner.run_report("course_success", {"institution": district}, tmp_path)


def test_unknown_template_names_the_templates():
    with pytest.raises(TemplateError, match="templates: course_success"):
        runner.load_template("enrollment_by_moon_phase")


def test_a_failing_template_writes_nothing(use_demo, tmp_path, monkeypatch):
    broken = nbformat.v4.new_notebook()
    broken.metadata["kernelspec"] = {"name": "enclave", "display_name": "Python 3 (Enclave)", "language": "python"}
    parameters = nbformat.v4.new_code_cell("year = '2024-25'")
    parameters.metadata["tags"] = ["parameters"]
    broken.cells = [parameters, nbformat.v4.new_code_cell("raise ValueError('no data for ' + year)")]
    folder = tmp_path / "templates"
    folder.mkdir()
    nbformat.write(broken, folder / "broken.ipynb")
    monkeypatch.setattr(runner, "TEMPLATES_DIR", folder)
    with pytest.raises(TemplateError, match="failed in cell .*ValueError: no data for 2024-25"):
        runner.run_report("broken", {}, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_cli_runs_a_report(demo_copy, tmp_path):
    result = CliRunner().invoke(
        enclave, ["report", "run", "course_success", "-p", "years", "2024-25", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "course_success.html").exists()
    events = AuditLog().events()
    assert events[-1].event == "report.run" and events[-1].details["template"] == "course_success"
    listing = CliRunner().invoke(enclave, ["report", "list"])
    assert "course_success" in listing.output and "years=" in listing.output


def test_cli_reports_bad_parameters(demo_copy, tmp_path):
    result = CliRunner().invoke(
        enclave, ["report", "run", "course_success", "-p", "colour", "red", "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "has no parameter 'colour'" in result.output
