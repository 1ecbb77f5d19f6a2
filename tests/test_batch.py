"""The batch runner: one report per institution, failures kept, the same tables with any --jobs."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from hub.audit import AuditLog
from hub.cli import enclave
from templates import batch, runner
from templates.exceptions import TemplateError


def colleges(state: Path) -> list[str]:
    manifest = json.loads((state / "demo" / "manifest.json").read_text())
    return sorted(m["code"] for m in manifest["members"] if m["segment"] == "cc")


def tables(page: Path) -> list[str]:
    return [str(t) for t in BeautifulSoup(page.read_text(), "html.parser").find_all("table")]


@pytest.fixture
def flaky_template(tmp_path, monkeypatch, use_demo) -> str:
    """A community-college template that fails for the second college and shows a count otherwise."""
    bad = colleges(use_demo)[1]
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "enclave", "display_name": "Python 3 (Enclave)", "language": "python"}
    notebook.metadata["enclave"] = {"title": "Flaky", "segment": "cc", "description": "fails for one college"}
    parameters = nbformat.v4.new_code_cell('institution = "ALL"')
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        parameters,
        nbformat.v4.new_code_cell(
            "from kernels import data\n"
            f"if institution == {bad!r}:\n"
            "    raise RuntimeError('the data of ' + institution + ' are not in yet')\n"
            "courses = data.load('cc_courses', ['institution', 'year'])\n"
            "courses[courses.institution == institution].groupby('year').size()"
        ),
    ]
    folder = tmp_path / "templates"
    folder.mkdir()
    nbformat.write(notebook, folder / "flaky.ipynb")
    monkeypatch.setattr(runner, "TEMPLATES_DIR", folder)
    return bad


def test_a_failing_institution_is_reported_and_the_others_run(flaky_template, use_demo, tmp_path):
    seen = []
    result = batch.run_batch("flaky", {}, "all", tmp_path / "out", progress=seen.append)
    codes = colleges(use_demo)
    assert [o.institution for o in result.outcomes] == codes and sorted(o.institution for o in seen) == codes
    (failed,) = result.failed
    assert failed.institution == flaky_template
    assert "RuntimeError: the data of" in failed.error and "are not in yet" in failed.error
    executed = nbformat.read(failed.notebook, as_version=4)  # kept, with the error in it
    assert any(o.get("ename") == "RuntimeError" for c in executed.cells for o in c.get("outputs", []))
    assert "are not in yet" in failed.html.read_text()
    for outcome in result.outcomes:
        if outcome.ok:
            assert outcome.html.name == f"{outcome.institution}.html" and "2024-25" in outcome.html.read_text()
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted([f"{c}.{ext}" for c in codes for ext in ("html", "ipynb")] + ["index.html"])
    index = BeautifulSoup(result.index.read_text(), "html.parser")
    links = [a["href"] for a in index.find_all("a") if a["href"].endswith(".html")]
    assert links == [f"{c}.html" for c in codes]
    assert "failed: failed in cell" in index.get_text() and "1 failed" in index.get_text()


def test_cli_batch_exits_with_an_error_after_running_the_others(flaky_template, demo_copy, tmp_path, monkeypatch):
    result = CliRunner().invoke(enclave, ["report", "batch", "flaky", "--institutions", "all", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert f"FAILED {flaky_template}: failed in cell" in result.output
    assert "flaky: 4 report(s)" in result.output  # the progress bar's label
    event = AuditLog().events()[-1]
    assert event.event == "report.batch" and event.details["failed"] == [flaky_template]
    assert len(event.details["institutions"]) == 4


def test_jobs_one_and_two_give_the_same_tables(use_demo, tmp_path):
    given = {"disaggregations": "ethnicity,gender", "years": "2023-24,2024-25"}
    serial = batch.run_batch("persistence", given, "all", tmp_path / "serial", jobs=1)
    parallel = batch.run_batch("persistence", given, "all", tmp_path / "parallel", jobs=2)
    assert not serial.failed and not parallel.failed
    for one, two in zip(serial.outcomes, parallel.outcomes, strict=True):
        assert one.institution == two.institution
        shown = tables(one.html)
        assert len(shown) == 7 and shown == tables(two.html)
    assert any("*" in t for o in serial.outcomes for t in tables(o.html))  # small cells were suppressed


@pytest.mark.parametrize(
    ("given", "institutions", "message"),
    [
        ({}, "NOSUCH", "'NOSUCH' is not an institution in your approved uses"),
        ({"institution": "ALL"}, "all", "use --institutions, not -p institution"),
        ({"years": "2030-31"}, "all", "2030-31 outside the data for persistence"),
        ({}, " , ", "give `all` or institution codes"),
    ],
    ids=["unknown-code", "institution-parameter", "year-outside", "empty-list"],
)
def test_bad_batches_are_refused_before_any_kernel(use_demo, tmp_path, monkeypatch, given, institutions, message):
    monkeypatch.setattr(runner.papermill, "execute_notebook", pytest.fail)
    with pytest.raises(TemplateError) as error:
        batch.run_batch("persistence", given, institutions, tmp_path / "out", jobs=2)
    assert message in str(error.value)
    assert not (tmp_path / "out").exists()


def test_a_district_in_a_college_batch_is_refused(use_demo, tmp_path):
    manifest = json.loads((use_demo / "demo" / "manifest.json").read_text())
    district = next(m["code"] for m in manifest["members"] if m["segment"] == "k12")
    with pytest.raises(TemplateError, match=f"but {district} is a K-12 district"):
        batch.plan_batch("persistence", {}, f"{colleges(use_demo)[0]},{district}")


def test_an_author_runs_a_batch_from_their_own_secure_kernel(demo_var, tmp_path):
    """The batch runner inside the secure kernel, as that kernel's account: institutions are
    checked against its uses, and each report runs in a kernel of its own."""
    from tests.kernel_client import KernelSession

    session = KernelSession(env={"ENCLAVE_VAR": str(demo_var)}, cwd=str(tmp_path))
    try:
        out = session.run(
            "from templates.batch import run_batch\n"
            "result = run_batch('persistence', {'years': '2024-25'}, 'all', 'reports', jobs=2)\n"
            "print('ran', sorted(o.institution for o in result.outcomes if o.ok), 'failed', len(result.failed))\n"
            "print([(o.institution, o.error) for o in result.failed])",
            timeout=600,
        )
        assert not out.errors, out.all
        assert f"ran {colleges(demo_var)} failed 0" in out.all
        # Each report kernel's filter events leave the author's kernel as its own events (its
        # server takes them to the hub under the author's name), each naming its run.
        runs = session.run("print(sorted((o.institution, o.run) for o in result.outcomes))")
        from_reports = [e for e in out.events if "report_run" in e["details"]]
        assert {(e["details"]["institution"], e["details"]["report_run"]) for e in from_reports} == set(
            ast.literal_eval(runs.all.strip())
        )
        assert all(e["details"]["template"] == "persistence" for e in from_reports)
        loads = [e for e in from_reports if e["event"] == "data.load"]
        assert {e["details"]["institution"] for e in loads} == set(colleges(demo_var))
        refused = session.run("run_batch('persistence', {}, 'NOSUCH', 'elsewhere')")
        assert "is not an institution in your approved uses" in refused.all
    finally:
        session.close()
    assert sorted(p.name for p in (tmp_path / "reports").glob("*.html")) == sorted(
        [f"{c}.html" for c in colleges(demo_var)] + ["index.html"]
    )
    assert not (tmp_path / "elsewhere").exists()


def members_of(state: Path, segment: str) -> list[str]:
    manifest = json.loads((state / "demo" / "manifest.json").read_text())
    return sorted(m["code"] for m in manifest["members"] if m["segment"] == segment)


def test_several_templates_run_in_one_queue_each_on_its_own_segment(demo_copy, tmp_path):
    """One batch of two templates: each takes the listed codes of its own segment (and ALL),
    writes a folder of its own, and gives the same tables as running it alone, serially."""
    district, college = members_of(demo_copy, "k12")[0], members_of(demo_copy, "cc")[0]
    out = tmp_path / "both"
    args = ["report", "batch", "college_going", "persistence", "--institutions", f"ALL,{district},{college}"]
    result = CliRunner().invoke(enclave, [*args, "-p", "years", "2023-24", "--jobs", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "college_going, persistence: 4 report(s)" in result.output
    for name, code in (("college_going", district), ("persistence", college)):
        assert sorted(p.name for p in (out / name).iterdir()) == sorted(
            [f"{c}.{ext}" for c in ("ALL", code) for ext in ("html", "ipynb")] + ["index.html"]
        )
        alone = batch.run_batch(name, {"years": "2023-24"}, f"ALL,{code}", tmp_path / name, jobs=1)
        for outcome in alone.outcomes:
            assert tables(out / name / f"{outcome.institution}.html") == tables(outcome.html)
            assert len(tables(outcome.html)) >= 3
    top = BeautifulSoup((out / "index.html").read_text(), "html.parser")
    assert [a["href"] for a in top.find_all("a")] == ["college_going/index.html", "persistence/index.html"]
    events = [e for e in AuditLog().events() if e.event == "report.batch"]
    assert [(e.details["template"], e.details["institutions"]) for e in events] == [
        ("college_going", ["ALL", district]),
        ("persistence", ["ALL", college]),
    ]


@pytest.mark.parametrize(
    ("names", "institutions", "message"),
    [
        (["college_going", "persistence"], "{univ}", "{univ} is a university, and none of college_going, persistence"),
        (["college_going", "persistence"], "{college}", "no code listed is a K-12 district, which college_going"),
        (["college_going", "persistence"], "{college},NOSUCH", "'NOSUCH' is not an institution in your approved"),
        (["persistence", "nosuch"], "all", "no template named 'nosuch'"),
        ([], "all", "name at least one template"),
    ],
    ids=["no-template-for-a-code", "no-code-for-a-template", "unknown-code", "unknown-template", "no-template"],
)
def test_bad_batches_of_several_templates_are_refused(use_demo, names, institutions, message):
    codes = {"univ": members_of(use_demo, "univ")[0], "college": members_of(use_demo, "cc")[0]}
    with pytest.raises(TemplateError) as error:
        batch.plan_batches(names, {}, institutions.format(**codes))
    assert message.format(**codes) in str(error.value)


def test_the_queue_runs_the_costliest_reports_first(use_demo, tmp_path, monkeypatch):
    """Every report of the batch in one queue, ordered by the records each reads: the
    consortium reports first, then institutions by their size; the index keeps the batch's
    order whatever the order of running."""
    ran = []

    def run_one(checked, out_dir):
        ran.append((checked.template.name, checked.values["institution"]))
        return batch.Outcome(checked.values["institution"], None, None)

    monkeypatch.setattr(batch, "run_one", run_one)
    monkeypatch.setattr(batch, "write_index", lambda folder, first, outcomes: folder / "index.html")
    catalog = batch.read_catalog()
    results = batch.run_batches(["college_going", "persistence"], {}, "all", tmp_path, catalog=catalog)
    plans = batch.plan_batches(["college_going", "persistence"], {}, "all", catalog)
    costs = [batch.cost(p, catalog) for name in ("college_going", "persistence") for p in plans[name]]
    assert sorted(costs, reverse=True) == [
        batch.cost(p, catalog) for name, code in ran for p in plans[name] if p.values["institution"] == code
    ]
    assert len(ran) == len(costs) == len(members_of(use_demo, "k12")) + len(members_of(use_demo, "cc"))
    assert len(set(costs)) > 2  # the order is decided by sizes, not by ties
    rows = catalog.rows["k12_enrollment"]
    districts = [code for name, code in ran if name == "college_going"]
    assert districts == sorted(rows, key=lambda c: -rows[c]) and set(districts) == set(members_of(use_demo, "k12"))
    assert [o.institution for o in results[0].outcomes] == members_of(use_demo, "k12")  # the batch's order
    with_all = batch.plan_batches(["persistence"], {}, f"{members_of(use_demo, 'cc')[0]},ALL", catalog)["persistence"]
    assert batch.cost(with_all[1], catalog) > batch.cost(with_all[0], catalog)  # the consortium's is the largest
