"""Run a standard report template with papermill in the secure kernel.

A template is a notebook in this folder with a cell tagged ``parameters``. Values given as
text (``-p years 2023-24,2024-25``) are converted to the type of the template's default
(lists split on commas). The report runs in the ``enclave`` kernel, so every output passes
the output filter; the executed notebook and an HTML rendering without code cells are written
to the output directory only when the run succeeds.
"""

from __future__ import annotations

import ast
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill
from nbconvert import HTMLExporter
from sqlalchemy.exc import OperationalError

from templates.exceptions import TemplateError
from warehouse.db import connect
from warehouse.elements import check_year
from warehouse.exceptions import WarehouseError
from warehouse.institutions import SEGMENTS, get_institution
from warehouse.workspace import current_user, visible_uses

TEMPLATES_DIR = Path(__file__).resolve().parent
KERNEL = "enclave"


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    help: str


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    path: Path
    parameters: tuple[Parameter, ...]
    segment: str | None = None  # the segment whose institutions the template reports on


@dataclass(frozen=True)
class ReportResult:
    notebook: Path
    html: Path
    parameters: dict[str, Any]


def list_templates() -> list[Template]:
    return [load_template(path.stem) for path in sorted(TEMPLATES_DIR.glob("*.ipynb"))]


def load_template(name: str) -> Template:
    path = TEMPLATES_DIR / f"{name}.ipynb"
    if not path.exists():
        names = ", ".join(p.stem for p in sorted(TEMPLATES_DIR.glob("*.ipynb")))
        raise TemplateError(f"no template named {name!r}; templates: {names}")
    found = papermill.inspect_notebook(str(path))
    parameters = tuple(Parameter(p["name"], ast.literal_eval(p["default"]), p.get("help", "")) for p in found.values())
    about = json.loads(path.read_text())["metadata"].get("enclave", {})
    return Template(name, about.get("title", name), path, parameters, about.get("segment"))


def convert(template: Template, given: dict[str, str]) -> dict[str, Any]:
    """Typed parameter values; errors name the parameter and the expected form."""
    known = {p.name: p for p in template.parameters}
    values: dict[str, Any] = {}
    for key, text in given.items():
        if key not in known:
            raise TemplateError(
                f"template {template.name} has no parameter {key!r}; its parameters: {', '.join(known)}"
            )
        default = known[key].default
        if isinstance(default, list):
            values[key] = [part.strip() for part in text.split(",") if part.strip()]
        elif isinstance(default, bool):
            if text.lower() not in ("true", "false"):
                raise TemplateError(f"parameter {key} must be true or false, not {text!r}")
            values[key] = text.lower() == "true"
        elif isinstance(default, int | float):
            try:
                values[key] = type(default)(text)
            except ValueError:
                raise TemplateError(f"parameter {key} must be a {type(default).__name__}, not {text!r}") from None
        else:
            values[key] = text
    return values


def check_values(template: Template, values: dict[str, Any]) -> None:
    """Check the parameters templates share: an institution code and academic years."""
    code = values.get("institution")
    if code is not None and code != "ALL":
        try:
            member = get_institution(connect(readonly=True), code)
        except WarehouseError as error:
            raise TemplateError(f"parameter institution: {error}") from None
        except (OperationalError, PermissionError):  # a user's own kernel cannot read the warehouse
            _check_in_extracts(code)
            member = None
        if member is not None and template.segment and member.segment != template.segment:
            raise TemplateError(
                f"parameter institution: {template.name} reports on {SEGMENTS[template.segment]}s, "
                f"but {code} is a {SEGMENTS[member.segment]}"
            )
    for year in values.get("years", []):
        try:
            check_year(year)
        except WarehouseError as error:
            raise TemplateError(f"parameter years: {error}") from None


def _check_in_extracts(code: str) -> None:
    """An institution code checked against the extracts this process may read."""
    known = {code for manifest in visible_uses(current_user()) for code in manifest.institutions}
    if code not in known:
        raise TemplateError(
            f"parameter institution: {code!r} is not an institution in your approved uses; "
            f"yours: {', '.join(sorted(known)) or 'none'}"
        )


def run_report(name: str, given: dict[str, str], out_dir: Path) -> ReportResult:
    """Execute template ``name`` with ``given`` parameters; write NAME.ipynb and NAME.html."""
    template = load_template(name)
    values = convert(template, given)
    check_values(template, values)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".running-") as scratch:
        executed = Path(scratch) / f"{name}.ipynb"
        try:
            papermill.execute_notebook(
                str(template.path),
                str(executed),
                parameters=values,
                kernel_name=KERNEL,
                progress_bar=False,
                cwd=scratch,
            )
        except papermill.PapermillExecutionError as error:
            raise TemplateError(
                f"template {name} failed in cell {error.exec_count}: {error.ename}: {error.evalue}"
            ) from None
        except Exception as error:  # kernel missing or dead, bad notebook
            raise TemplateError(f"template {name} could not run: {type(error).__name__}: {error}") from None
        html = Path(scratch) / f"{name}.html"
        html.write_text(render_html(executed), encoding="utf-8")
        notebook = out_dir / executed.name
        page = out_dir / html.name
        shutil.move(executed, notebook)
        shutil.move(html, page)
    return ReportResult(notebook, page, values)


def render_html(notebook: Path) -> str:
    """The executed report as HTML without code cells or prompts."""
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _resources = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    return body
