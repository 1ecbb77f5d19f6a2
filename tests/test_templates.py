"""Report templates: parameters checked before any kernel, the secure kernel, HTML without code."""

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
from templates.metrics import METRICS
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
    """The report's enrollment counts (ethnicity × term) with plain pandas, outside any filter."""
    engine = connect(f"sqlite:///{state / 'warehouse.db'}")
    courses = read_table(engine, "cc_courses")
    students = read_table(engine, "cc_students", ["institution", "year", "student_key", "ethnicity"])
    courses = courses[courses.year.isin(years)]
    merged = courses.merge(students, on=["institution", "year", "student_key"], how="left")
    merged["ethnicity"] = merged["ethnicity"].fillna("Not Reported")
    merged["term"] = merged["term"].map(lambda t: f"{SEASONS[t[4:]]} {t[:4]}")
    return pd.crosstab(merged.ethnicity, merged.term)


def table_after(html: str, heading: str) -> pd.DataFrame:
    """The first table after the heading that starts with ``heading``, as text cells."""
    soup = BeautifulSoup(html, "html.parser")
    title = next(h for h in soup.find_all(["h2", "h3"]) if h.get_text(strip=True).startswith(heading))
    table = title.find_next("table")
    header = [th.get_text(strip=True) for th in table.find("thead").find_all("tr")[0].find_all("th")][1:]
    rows = {}
    for tr in table.find("tbody").find_all("tr"):
        rows[tr.find("th").get_text(strip=True)] = [td.get_text(strip=True) for td in tr.find_all("td")]
    return pd.DataFrame.from_dict(rows, orient="index", columns=header)


@pytest.fixture
def no_kernel(monkeypatch):
    """Fail the test if a report would start a kernel."""

    def refuse(*args, **kwargs):
        raise AssertionError("a kernel was started for a report with bad parameters")

    monkeypatch.setattr(runner.papermill, "execute_notebook", refuse)


def test_six_templates_are_listed_with_their_parameters():
    templates = {t.name: t for t in runner.list_templates()}
    assert (
        set(templates)
        == set(METRICS)
        == {
            "college_going",
            "transfer_level",
            "course_success",
            "persistence",
            "completion",
            "transfer",
        }
    )
    for template in templates.values():
        assert {p.name: p.default for p in template.parameters} == {
            "institution": "ALL",
            "years": [],
            "disaggregations": ["ethnicity"],
        }
        assert template.segment == METRICS[template.name].segment and template.description
    assert templates["college_going"].segment == "k12"


def test_course_success_report_reads_as_a_report_and_the_filter_suppresses(use_demo, tmp_path):
    years = ["2023-24", "2024-25"]
    result = runner.run_report("course_success", {"years": ",".join(years)}, tmp_path / "out")
    assert result.parameters == {"years": years}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["course_success.html", "course_success.ipynb"]

    html = result.html.read_text()
    assert "report.start(" not in html and "from templates import" not in html  # no code in the HTML
    soup = BeautifulSoup(html, "html.parser")
    headings = [h.get_text(strip=True).rstrip("¶") for h in soup.find_all(["h1", "h2"])]
    assert headings[:3] == ["Course success rate", "Methods", "Course success rate by term"]
    assert "By race/ethnicity" in headings and headings[-1] == "What was suppressed, and why"
    assert "Cohort (denominator):" in html and "graded A, B, C or P" in html
    assert len(soup.find_all("img")) >= 2  # the charts

    truth = true_counts(use_demo, years)
    shown = table_after(html, "Enrollments in the cohort by race/ethnicity")
    small = [(e, t) for e in truth.index for t in truth.columns if 0 < truth.loc[e, t] < 10]
    assert small, "the demo should give the report small cells"
    for ethnicity, term in small:
        assert shown.loc[ethnicity, term] == "*"
    for ethnicity in truth.index:
        for term in truth.columns:
            if shown.loc[ethnicity, term] != "*":
                assert int(shown.loc[ethnicity, term]) == truth.loc[ethnicity, term]
    rates = table_after(html, "Course success: rate (%) by race/ethnicity")
    assert (rates[shown == "*"] == "*").where(shown == "*", True).all().all()  # no rate beside a hidden count

    closing = next(h for h in soup.find_all("h2") if h.get_text().startswith("What was suppressed"))
    summary = closing.find_next("ul").get_text(" ", strip=True)
    assert "threshold of 10" in summary and "primary suppression" in summary
    executed = nbformat.read(result.notebook, as_version=4)
    assert executed.metadata["papermill"]["parameters"] == {"years": years}


def test_one_college_and_a_raised_threshold(use_demo, tmp_path):
    college = members(use_demo)["cc"][0]
    result = runner.run_report("persistence", {"institution": college, "threshold": "50"}, tmp_path)
    html = result.html.read_text()
    assert f"college {college}" in html
    assert "Threshold:</strong> 50" in html and "threshold of 50" in html
    counts = table_after(html, "Students in the cohort by race/ethnicity")
    shown = [int(v) for v in counts.to_numpy().ravel() if v not in ("*", "0")]
    assert shown and min(shown) >= 50


@pytest.mark.parametrize(
    ("name", "given", "message"),
    [
        ("course_success", {"colour": "red"}, "has no parameter 'colour'; its parameters: institution, years"),
        ("course_success", {"institution": "NOSUCH"}, "'NOSUCH' is not an institution in your approved uses"),
        ("course_success", {"years": "2024"}, "not an academic year such as 2023-24"),
        ("course_success", {"years": "2019-20"}, "2019-20 outside the data for course_success; the data you may"),
        ("completion", {"years": "2025-26"}, "2025-26 outside the data for completion"),
        ("persistence", {"disaggregations": "gender,shoe_size"}, "'shoe_size' is not a disaggregation"),
        ("persistence", {"threshold": "5"}, "5 is below the consortium policy's threshold of 10"),
        ("persistence", {"threshold": "many"}, "threshold must be a whole number"),
        ("moon_phase", {}, "no template named 'moon_phase'; templates: college_going, completion"),
    ],
    ids=[
        "unknown-parameter",
        "unknown-institution",
        "bad-year",
        "year-before-the-data",
        "cohort-too-recent",
        "unknown-disaggregation",
        "threshold-below-policy",
        "threshold-not-a-number",
        "unknown-template",
    ],
)
def test_bad_parameters_are_refused_before_any_kernel(use_demo, tmp_path, no_kernel, name, given, message):
    with pytest.raises(TemplateError) as error:
        runner.run_report(name, given, tmp_path / "out")
    assert message in str(error.value)
    assert not (tmp_path / "out").exists()


def test_institution_of_the_wrong_segment_is_refused(use_demo, tmp_path, no_kernel):
    district = members(use_demo)["k12"][0]
    with pytest.raises(TemplateError, match=f"reports on community colleges, but {district} is a K-12 district"):
        runner.run_report("course_success", {"institution": district}, tmp_path)


def test_institutions_are_checked_against_the_approved_uses_without_the_warehouse(
    use_demo, tmp_path, monkeypatch, no_kernel
):
    def no_warehouse(*args, **kwargs):
        raise AssertionError("the runner opened the warehouse")

    monkeypatch.setattr("warehouse.db.connect", no_warehouse)
    college = members(use_demo)["cc"][0]
    monkeypatch.setenv("ENCLAVE_USER", "demo-author")  # holds the demo use: the college is known
    with pytest.raises(TemplateError, match="could not run: AssertionError: a kernel was started"):
        runner.run_report("course_success", {"institution": college}, tmp_path)  # checks passed
    monkeypatch.setenv("ENCLAVE_USER", "someone-without-uses")
    with pytest.raises(TemplateError, match=f"{college!r} is not an institution in your approved uses; yours: none"):
        runner.run_report("course_success", {"institution": college}, tmp_path)


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
        enclave, ["report", "run", "transfer", "-p", "disaggregations", "gender", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "transfer.html").exists()
    events = AuditLog().events()
    assert events[-1].event == "report.run" and events[-1].details["template"] == "transfer"
    from_kernel = [e for e in events if e.event.startswith("kernel.")]  # the report kernel's filter events
    assert {e.event for e in from_kernel} >= {"kernel.data.load", "kernel.output.suppressed"}
    assert {e.details["report_run"] for e in from_kernel} == {events[-1].details["run"]}
    listing = CliRunner().invoke(enclave, ["report", "list"])
    assert "college_going: College-going rate" in listing.output and "disaggregations=['ethnicity']" in listing.output


def test_cli_reports_bad_parameters(demo_copy, tmp_path):
    result = CliRunner().invoke(
        enclave, ["report", "run", "course_success", "-p", "colour", "red", "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "has no parameter 'colour'" in result.output


def test_a_kernel_that_dies_before_it_answers_is_started_once_more(monkeypatch, tmp_path):
    """A kernel port taken by another process between jupyter_client's choice and the kernel's
    bind: nothing ran, so the run starts a kernel again; a second death, or any other error, is
    the caller's."""
    calls = []

    def flaky(*args, **kwargs):
        calls.append(kwargs["cwd"])
        if len(calls) == 1:
            raise RuntimeError(runner.DIED_AT_START)

    monkeypatch.setattr(runner.papermill, "execute_notebook", flaky)
    checked = runner.Plan(runner.load_template("course_success"), {}, 10)
    runner.execute(checked, tmp_path / "out.ipynb", tmp_path)
    assert calls == [str(tmp_path), str(tmp_path)]

    def dead(*args, **kwargs):
        calls.append("dead")
        raise RuntimeError(runner.DIED_AT_START)

    monkeypatch.setattr(runner.papermill, "execute_notebook", dead)
    calls.clear()
    with pytest.raises(RuntimeError):
        runner.execute(checked, tmp_path / "out.ipynb", tmp_path)
    assert calls == ["dead", "dead"]

    def other(*args, **kwargs):
        calls.append("other")
        raise RuntimeError("something else")

    monkeypatch.setattr(runner.papermill, "execute_notebook", other)
    calls.clear()
    with pytest.raises(RuntimeError, match="something else"):
        runner.execute(checked, tmp_path / "out.ipynb", tmp_path)
    assert calls == ["other"]
