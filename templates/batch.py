"""Run templates for many institutions: ``enclave report batch NAME… --institutions … --jobs N``.

Each institution's report is a run of its own (``templates.runner``: its own kernel, its own
fresh ledger), written as ``CODE.ipynb`` and ``CODE.html`` (the HTML without code), named by
the institution's code only; ``index.html`` links them all. A report that fails keeps its
executed notebook, with the error in it, and an HTML page showing the error; the other
institutions go on. Every parameter of every run is checked before the first kernel starts.
Several templates in one batch each get the institutions of their own segment, and a folder
``NAME/`` of their own; the top ``index.html`` links each template's index.

``--jobs N`` runs N reports at a time in separate worker processes, all the batch's reports
(of every template) in one queue, the costliest first (``cost``: the records a report reads),
so no worker sits idle while another finishes a long tail. Because no run depends on another
(no shared ledger, no shared kernel), the tables are the same with any N and in any order of
completion.

Each report's filter events (``templates.kernel_events``) come back with its outcome, tagged
with its run, and go to ``on_events`` in the process that called ``run_batch`` (the audit log
for ``enclave report batch``; the author's own kernel, and so the hub, from JupyterLab).
"""

from __future__ import annotations

import html
import multiprocessing
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import papermill

from templates.catalog import Catalog, read_catalog
from templates.exceptions import TemplateError
from templates.kernel_events import EventSink, forward_from_kernel, tagged
from templates.metrics import ALL, METRICS
from templates.runner import Plan, execute, isolated_run, load_template, new_run, plan, render_html
from warehouse.institutions import SEGMENTS


@dataclass(frozen=True)
class Outcome:
    institution: str
    notebook: Path | None
    html: Path | None
    error: str | None = None  # None: the report ran
    run: str = ""  # the run's id, in its audit events
    events: tuple[dict, ...] = ()  # the kernel's filter events, tagged with the run

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class BatchResult:
    template: str
    outcomes: tuple[Outcome, ...]
    index: Path

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]


def choose_institutions(choice: str, segment: str | None, catalog: Catalog) -> list[str]:
    """``all`` (every institution of the template's segment you may read) or ``CODE,CODE``."""
    if choice.strip().lower() == "all":
        codes = catalog.codes(segment)
        if not codes:
            raise TemplateError(f"--institutions all: your approved uses hold no institution of segment {segment}")
        return codes
    codes = [c.strip() for c in choice.split(",") if c.strip()]
    if not codes:
        raise TemplateError("--institutions: give `all` or institution codes separated by commas")
    return list(dict.fromkeys(codes))


def plan_batch(name: str, given: dict[str, str], institutions: str, catalog: Catalog | None = None) -> list[Plan]:
    """One checked plan per institution; the first bad parameter stops the batch before any run."""
    return plan_batches([name], given, institutions, catalog)[name]


def plan_batches(
    names: Sequence[str], given: dict[str, str], institutions: str, catalog: Catalog | None = None
) -> dict[str, list[Plan]]:
    """Checked plans of each template, by name; the first bad parameter stops all before any run.

    With several templates, each takes the listed codes of its own segment (and ``ALL``); a code
    no template reports on is refused. With one, every code must be of its segment."""
    catalog = read_catalog() if catalog is None else catalog
    if "institution" in given:
        raise TemplateError("a batch sets the institution of each report: use --institutions, not -p institution")
    names = list(dict.fromkeys(names))
    if not names:
        raise TemplateError("name at least one template (`enclave report list` shows them)")
    segments = {name: load_template(name).segment for name in names}
    for name in names:
        plan(name, given, catalog)  # the shared parameters, checked against each template
    if len(names) == 1 or institutions.strip().lower() == "all":
        chosen = {name: choose_institutions(institutions, segments[name], catalog) for name in names}
    else:
        codes = choose_institutions(institutions, None, catalog)
        for code in codes:
            segment = catalog.segment_of(code)
            if code != ALL and segment is not None and segment not in segments.values():
                raise TemplateError(
                    f"--institutions: {code} is a {SEGMENTS[segment]}, and none of {', '.join(names)} reports on "
                    "that segment; leave it out, or add a template that does (`enclave report list`)"
                )
        chosen = {n: [c for c in codes if c == ALL or catalog.segment_of(c) in (None, segments[n])] for n in names}
        for name, mine in chosen.items():
            if not mine:
                raise TemplateError(
                    f"--institutions: no code listed is a {SEGMENTS.get(segments[name], segments[name])}, which "
                    f"{name} reports on; add some (or ALL for the consortium), or leave {name} out"
                )
    return {name: [plan(name, {**given, "institution": code}, catalog) for code in chosen[name]] for name in names}


def cost(checked: Plan, catalog: Catalog) -> int:
    """How much a report reads, to run the costliest first: every record of the metric's
    tables (each report loads them all), plus the institution's records of its cohort table
    (the rows it works through). 0 for a template without a standard metric."""
    metric = METRICS.get(checked.template.name)
    if metric is None:
        return 0
    code = checked.values.get("institution", ALL)
    whole = sum(sum(catalog.rows.get(table, {}).values()) for table in metric.tables)
    cohort = catalog.rows.get(metric.tables[0], {})
    return whole + (sum(cohort.values()) if code == ALL else cohort.get(code, 0))


def run_one(checked: Plan, out_dir: Path) -> Outcome:
    """One institution's report; a failure is recorded in its outcome, never raised."""
    code = checked.institution
    notebook, page = out_dir / f"{code}.ipynb", out_dir / f"{code}.html"
    run, collected = new_run(), []
    with isolated_run(checked.threshold) as scratch:
        executed = scratch / f"{code}.ipynb"
        error = None
        try:
            execute(checked, executed, scratch, collected)
        except papermill.PapermillExecutionError as failure:
            error = f"failed in cell {failure.exec_count}: {failure.ename}: {failure.evalue}"
        except Exception as failure:  # kernel missing or dead, bad notebook
            error = f"could not run: {type(failure).__name__}: {failure}"
        events = tagged(collected, run, checked.template.name, code)
        if not executed.exists():
            return Outcome(code, None, None, error or "no notebook was written", run, events)
        page_text = render_html(executed)
        (scratch / page.name).write_text(page_text, encoding="utf-8")
        shutil.move(executed, notebook)
        shutil.move(scratch / page.name, page)
    return Outcome(code, notebook, page, error, run, events)


def run_batch(
    name: str,
    given: dict[str, str],
    institutions: str,
    out_dir: Path,
    *,
    jobs: int = 1,
    progress: Callable[[Outcome], None] | None = None,
    catalog: Catalog | None = None,
    plans: list[Plan] | None = None,
    on_events: EventSink | None = None,
) -> BatchResult:
    """Run template ``name`` for each institution; write CODE.ipynb, CODE.html and index.html.

    ``plans`` (from ``plan_batch``) saves checking the parameters a second time. Each report's
    filter events go to ``on_events`` as it completes (default: sent on from this process)."""
    planned = {name: plans} if plans is not None else None
    (result,) = run_batches(
        [name],
        given,
        institutions,
        out_dir,
        jobs=jobs,
        progress=progress,
        catalog=catalog,
        plans=planned,
        on_events=on_events,
    )
    return result


def run_batches(
    names: Sequence[str],
    given: dict[str, str],
    institutions: str,
    out_dir: Path,
    *,
    jobs: int = 1,
    progress: Callable[[Outcome], None] | None = None,
    catalog: Catalog | None = None,
    plans: dict[str, list[Plan]] | None = None,
    on_events: EventSink | None = None,
) -> list[BatchResult]:
    """Run each template for its institutions, all reports in one queue of ``jobs`` workers.

    One template writes to ``out_dir``; several write ``out_dir/NAME/`` each, and an
    ``index.html`` in ``out_dir`` that links theirs. ``plans`` (from ``plan_batches``) saves
    checking the parameters a second time. Each report's filter events go to ``on_events`` as
    it completes (default: sent on from this process)."""
    if jobs < 1:
        raise TemplateError(f"--jobs must be at least 1, not {jobs}")
    catalog = read_catalog() if catalog is None and plans is None else catalog
    plans = plan_batches(names, given, institutions, catalog) if plans is None else plans
    out_dir = Path(out_dir)
    folders = {name: out_dir if len(plans) == 1 else out_dir / name for name in plans}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    queue = [(name, checked) for name, planned in plans.items() for checked in planned]
    if catalog is not None:  # costliest first (a stable sort: ties keep the batch's order)
        queue.sort(key=lambda item: -cost(item[1], catalog))
    outcomes: dict[tuple[str, str], Outcome] = {}

    sink = on_events or forward_from_kernel

    def done(name: str, outcome: Outcome) -> None:
        outcomes[name, outcome.institution] = outcome
        sink(outcome.events)
        if progress is not None:
            progress(outcome)

    if jobs == 1 or len(queue) == 1:
        for name, checked in queue:
            done(name, run_one(checked, folders[name]))
    else:
        # Separate processes, each starting fresh (a run's environment, its ledger, is its own),
        # forked from a server process that has imported papermill and nbformat once (about 3 s
        # each process would spend on its own), not from this one (its threads, its state).
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        with ProcessPoolExecutor(max_workers=min(jobs, len(queue)), mp_context=context) as pool:
            futures = {pool.submit(run_one, checked, folders[name]): name for name, checked in queue}
            for future in as_completed(futures):
                done(futures[future], future.result())
    results = []
    for name, planned in plans.items():
        ordered = tuple(outcomes[name, p.values["institution"]] for p in planned)
        results.append(BatchResult(name, ordered, write_index(folders[name], planned[0], ordered)))
    if len(results) > 1:
        write_top_index(out_dir, results)
    return results


def write_index(out_dir: Path, first: Plan, outcomes: Sequence[Outcome]) -> Path:
    """``index.html``: the batch's template and parameters, and a link to every report."""
    title = html.escape(first.template.title)
    shown = {k: v for k, v in first.values.items() if k != "institution"}

    def text(value) -> str:
        return html.escape(", ".join(value) if isinstance(value, list) else str(value)) or "(every one)"

    parameters = "".join(f"<li><code>{html.escape(k)}</code> = {text(v)}</li>" for k, v in shown.items())
    parameters = parameters or "<li>the template's defaults</li>"
    rows = []
    for o in outcomes:
        code = html.escape(o.institution)
        link = f'<a href="{html.escape(o.html.name)}">{code}</a>' if o.html else code
        notebook = f'<a href="{html.escape(o.notebook.name)}">notebook</a>' if o.notebook else ""
        status = "ran" if o.ok else f'<span class="failed">failed: {html.escape(o.error or "")}</span>'
        rows.append(f"<tr><td>{link}</td><td>{status}</td><td>{notebook}</td></tr>")
    failed = sum(not o.ok for o in outcomes)
    summary = f"{len(outcomes)} report(s), {failed} failed." if failed else f"{len(outcomes)} report(s)."
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: reports by institution</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}}
table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ccc;padding:.3em 1em;text-align:left}}
.failed{{color:#8a1c1c;font-weight:600}}</style></head>
<body><h1>{title}</h1><p>{html.escape(first.template.description)}</p>
<h2>Parameters</h2><ul>{parameters}</ul>
<h2>Reports</h2><p>{summary} Institutions appear by their consortium codes; each report's tables
passed the output filter.</p>
<table><thead><tr><th>Institution</th><th>Status</th><th>Executed notebook</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></body></html>
"""
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_top_index(out_dir: Path, results: Sequence[BatchResult]) -> Path:
    """``index.html`` of a batch of several templates: a link to each template's own index."""
    rows = []
    for result in results:
        failed = len(result.failed)
        status = f'<span class="failed">{failed} failed</span>' if failed else "all ran"
        link = f'<a href="{html.escape(result.template)}/index.html">{html.escape(result.template)}</a>'
        rows.append(f"<tr><td>{link}</td><td>{len(result.outcomes)}</td><td>{status}</td></tr>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Standard reports</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}}
table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ccc;padding:.3em 1em;text-align:left}}
.failed{{color:#8a1c1c;font-weight:600}}</style></head>
<body><h1>Standard reports</h1><p>{len(results)} templates, each with its reports by institution.</p>
<table><thead><tr><th>Template</th><th>Reports</th><th>Status</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></body></html>
"""
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
