"""``enclave report``: the standard report templates (papermill, secure kernel)."""

from __future__ import annotations

from pathlib import Path

import click

from hub.audit import AuditLog
from hub.cli.errors import EXPECTED, actor, fail


@click.group()
def report() -> None:
    """Standard report templates (papermill, secure kernel)."""


@report.command("list")
def report_list() -> None:
    """List templates and their parameters."""
    from templates.runner import list_templates

    for template in list_templates():
        params = ", ".join(f"{p.name}={p.default!r}" for p in template.parameters)
        click.echo(f"{template.name}: {template.title}\n    parameters: {params}")


@report.command("run")
@click.argument("name")
@click.option(
    "-p",
    "--parameter",
    "parameters",
    multiple=True,
    nargs=2,
    metavar="KEY VALUE",
    help="Set a template parameter (repeatable).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the executed notebook and the HTML report.",
)
def report_run(name: str, parameters: tuple[tuple[str, str], ...], out_dir: Path) -> None:
    """Run template NAME in the secure kernel; write NAME.ipynb and NAME.html to --out."""
    from templates.exceptions import TemplateError
    from templates.runner import run_report

    try:
        result = run_report(name, dict(parameters), out_dir)
    except (*EXPECTED, TemplateError) as error:
        raise fail(error) from None
    AuditLog().record(
        actor(),
        "report.run",
        template=name,
        parameters=result.parameters,
        notebook=str(result.notebook),
        html=str(result.html),
    )
    click.echo(f"Wrote {result.notebook}\nWrote {result.html}")
