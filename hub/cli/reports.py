"""``enclave report``: list, run and batch-run the standard report templates.

Thin commands: parameters are checked by ``templates.runner`` (before any kernel starts), the
reports run in the secure kernel, and each run or batch is written to the audit log through
``audit_report``, and each report kernel's filter events (collected by the runner from the
kernel's IOPub) through ``kernel_events_sink``: under the command's user, tagged with the run,
kept or dropped by the same rules as the events a user's server posts to the hub
(``hub.kernel_events``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import click

from hub.audit import AuditLog
from hub.cli.errors import EXPECTED, actor, fail
from hub.kernel_events import MAX_RUN_EVENTS, audit_entry
from templates.exceptions import RunFailed, TemplateError

PARAMETER = click.option(
    "-p",
    "--parameter",
    "parameters",
    multiple=True,
    nargs=2,
    metavar="KEY VALUE",
    help="Set a template parameter (repeatable); lists are comma-separated. `-p threshold N` raises the "
    "policy's threshold for this report (never lowers it).",
)
OUT = click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the executed notebooks and the HTML reports.",
)


def audit_report(event: str, **details) -> None:
    """Record a report event in the audit log (one call, whatever the log's API becomes)."""
    AuditLog().record(actor(), event, **details)


def kernel_events_sink() -> Callable[[Sequence[dict]], None]:
    """Where a report run's kernel events go: the audit log, as ``kernel.…`` events of this user."""
    log, who = AuditLog(), actor()

    def record(collected: Sequence[dict]) -> None:
        for item in list(collected)[:MAX_RUN_EVENTS]:
            entry = audit_entry(item)
            if entry is not None:
                log.record(who, entry[0], **entry[1])

    return record


def check_policy() -> None:
    """A hand-edited policy.toml refuses a report run as it refuses the hub's start: the report
    kernels read that file (``hub.governance``)."""
    from hub.governance import default_governance

    default_governance().check_governed(actor())


@click.group()
def report() -> None:
    """Standard report templates (papermill, secure kernel)."""


@report.command("list")
def report_list() -> None:
    """List templates, what each reports, and their parameters."""
    from templates.runner import list_templates

    for template in list_templates():
        click.echo(f"{template.name}: {template.title}")
        if template.description:
            click.echo(f"    {template.description}")
        for p in template.parameters:
            click.echo(f"    {p.name}={p.default!r}" + (f"  ({p.help})" if p.help else ""))


@report.command("run")
@click.argument("name")
@PARAMETER
@OUT
def report_run(name: str, parameters: tuple[tuple[str, str], ...], out_dir: Path) -> None:
    """Run template NAME in the secure kernel; write NAME.ipynb and NAME.html to --out."""
    from templates.runner import run_report

    try:
        check_policy()
        result = run_report(name, dict(parameters), out_dir, on_events=kernel_events_sink())
    except RunFailed as error:  # its kernel's events are on the record: so is the run
        audit_report("report.run", run=error.run, template=name, parameters=dict(parameters), failed=str(error)[:300])
        raise fail(error) from None
    except (*EXPECTED, TemplateError) as error:
        raise fail(error) from None
    audit_report(
        "report.run",
        run=result.run,
        template=name,
        parameters=result.parameters,
        notebook=str(result.notebook),
        html=str(result.html),
    )
    click.echo(f"Wrote {result.notebook}\nWrote {result.html}")


@report.command("batch")
@click.argument("names", metavar="NAME...", nargs=-1, required=True)
@PARAMETER
@click.option(
    "--institutions",
    required=True,
    metavar="all|CODE,…",
    help="`all` (every institution of each template's segment in your approved uses) or codes separated by "
    "commas (`ALL` for the consortium); with several templates each takes the codes of its own segment.",
)
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1), help="Reports run at a time.")
@OUT
def report_batch(
    names: tuple[str, ...], parameters: tuple[tuple[str, str], ...], institutions: str, jobs: int, out_dir: Path
) -> None:
    """Run each template NAME for each institution: CODE.ipynb, CODE.html and index.html in --out
    (with several templates, in --out/NAME/, and an index.html linking them). All the reports
    share one queue of --jobs workers, the largest first."""
    from templates.batch import plan_batches, run_batches
    from templates.catalog import read_catalog

    given = dict(parameters)
    try:
        check_policy()
        catalog = read_catalog()
        plans = plan_batches(names, given, institutions, catalog)  # every parameter checked before any kernel
        count = sum(len(p) for p in plans.values())
        label = f"{', '.join(plans)}: {count} report(s)"
        with click.progressbar(length=count, label=label, show_pos=True) as bar:
            results = run_batches(
                list(plans),
                given,
                institutions,
                out_dir,
                jobs=jobs,
                progress=lambda _o: bar.update(1),
                catalog=catalog,
                plans=plans,
                on_events=kernel_events_sink(),
            )
    except (*EXPECTED, TemplateError) as error:
        raise fail(error) from None
    failed = []
    for result in results:
        audit_report(
            "report.batch",
            template=result.template,
            parameters={k: v for k, v in given.items()},
            institutions=[o.institution for o in result.outcomes],
            runs={o.institution: o.run for o in result.outcomes},
            failed=[o.institution for o in result.failed],
            index=str(result.index),
        )
        failed += [(result.template, o) for o in result.failed]
    for name, outcome in failed:
        where = f"{name} " if len(results) > 1 else ""
        click.echo(
            f"FAILED {where}{outcome.institution}: {outcome.error} (see {outcome.notebook or 'no notebook'})", err=True
        )
    index = out_dir / "index.html"
    click.echo(f"Wrote {sum(len(r.outcomes) for r in results)} report(s) to {out_dir}; index: {index}")
    if failed:
        raise click.exceptions.Exit(1)
