"""Run a standard report template with papermill in the secure kernel.

A template is a notebook in this folder with a cell tagged ``parameters``. Values given as
text (``-p years 2023-24,2024-25``) are converted to the type of the template's default
(lists split on commas). Every parameter is checked before any kernel starts: the template and
parameter names, the institution (one the running account's approved uses hold, of the
template's segment), the years (ones the data can answer), the disaggregations, and a
``threshold``, which may only raise the consortium policy's, never lower it.

Each report runs in the ``enclave`` kernel, so every output passes the output filter, with a
ledger of its own (a fresh ``ENCLAVE_LEDGER_DIR``): what one report suppresses does not depend
on the reports run before it, so a batch gives the same tables in any order and with any
number of jobs. The executed notebook and an HTML rendering without code cells are written to
the output directory when the run succeeds (``templates.batch`` keeps failed ones too).

Each run has an id (``ReportResult.run``). The kernel's filter events (what it suppressed or
blocked, and tampering: the rule and the table's shape) are collected from its IOPub messages
(``templates.kernel_events``), tagged with that id and handed to ``on_events`` — the audit log
for ``enclave report``, the author's own kernel by default — whether the run succeeds or not.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill
from nbconvert import HTMLExporter

from output_filters.policy import Policy, load_policy
from templates.catalog import Catalog, read_catalog
from templates.exceptions import RunFailed, TemplateError
from templates.kernel_events import ENGINE, EventSink, forward_from_kernel, tagged
from templates.metrics import ALL, DISAGGREGATIONS, METRICS
from warehouse.elements import check_year
from warehouse.exceptions import WarehouseError
from warehouse.institutions import SEGMENTS

TEMPLATES_DIR = Path(__file__).resolve().parent
KERNEL = "enclave"
THRESHOLD = "threshold"  # not a template parameter: the runner's, checked against the policy


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
    description: str = ""


@dataclass(frozen=True)
class ReportResult:
    notebook: Path
    html: Path
    parameters: dict[str, Any]
    run: str = ""  # the run's id, in its audit events
    events: tuple[dict, ...] = ()  # the kernel's filter events, tagged with the run


@dataclass(frozen=True)
class Plan:
    """A checked report: the template, its typed parameters, and the policy it runs under."""

    template: Template
    values: dict[str, Any]
    threshold: int | None = None  # raised above the policy's, or None

    @property
    def institution(self) -> str:
        return str(self.values.get("institution", ALL))


def list_templates() -> list[Template]:
    return [load_template(path.stem) for path in sorted(TEMPLATES_DIR.glob("*.ipynb"))]


def load_template(name: str) -> Template:
    path = TEMPLATES_DIR / f"{name}.ipynb"
    if not path.exists():
        names = ", ".join(p.stem for p in sorted(TEMPLATES_DIR.glob("*.ipynb")))
        raise TemplateError(f"no template named {name!r}; templates: {names} (`enclave report list` describes them)")
    found = papermill.inspect_notebook(str(path))
    parameters = tuple(Parameter(p["name"], ast.literal_eval(p["default"]), p.get("help", "")) for p in found.values())
    about = json.loads(path.read_text())["metadata"].get("enclave", {})
    return Template(
        name, about.get("title", name), path, parameters, about.get("segment"), about.get("description", "")
    )


def convert(template: Template, given: dict[str, str]) -> dict[str, Any]:
    """Typed parameter values; errors name the parameter and the expected form."""
    known = {p.name: p for p in template.parameters}
    values: dict[str, Any] = {}
    for key, text in given.items():
        if key == THRESHOLD:
            continue  # the runner's own (check_threshold)
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


def check_threshold(given: dict[str, str], policy: Policy) -> int | None:
    """A ``threshold`` parameter: refused below the policy's; above it, the report's own."""
    if THRESHOLD not in given:
        return None
    text = given[THRESHOLD]
    try:
        wanted = int(text)
    except ValueError:
        raise TemplateError(f"parameter threshold must be a whole number of students, not {text!r}") from None
    if wanted < policy.threshold:
        raise TemplateError(
            f"parameter threshold: {wanted} is below the consortium policy's threshold of {policy.threshold}; "
            "a report can suppress more than the policy, never less (the policy is changed through its governance)"
        )
    return wanted if wanted > policy.threshold else None


def check_values(template: Template, values: dict[str, Any], catalog: Catalog) -> None:
    """Check the parameters templates share against what this account may read."""
    code = values.get("institution")
    if code is not None and code != ALL:
        segment = catalog.segment_of(code)
        if segment is None:
            raise TemplateError(
                f"parameter institution: {code!r} is not an institution in your approved uses; yours: "
                f"{catalog.describe(template.segment)} (an administrator sees every member with "
                "`enclave institution list`)"
            )
        if template.segment and segment != template.segment:
            raise TemplateError(
                f"parameter institution: {template.name} reports on {SEGMENTS[template.segment]}s, "
                f"but {code} is a {SEGMENTS[segment]}; choose one of {catalog.describe(template.segment)} or ALL"
            )
    years = values.get("years", [])
    for year in years:
        try:
            check_year(year)
        except WarehouseError as error:
            raise TemplateError(f"parameter years: {error}") from None
    metric = METRICS.get(template.name)
    if metric is not None and years:
        answerable = metric.years(catalog.years)
        outside = [y for y in years if y not in answerable]
        if outside:
            raise TemplateError(
                f"parameter years: {', '.join(outside)} outside the data for {template.name}; the data you may read "
                f"answer {', '.join(answerable) or 'no year'}"
            )
    unknown = [d for d in values.get("disaggregations", []) if d not in DISAGGREGATIONS]
    if unknown:
        raise TemplateError(
            f"parameter disaggregations: {', '.join(map(repr, unknown))} is not a disaggregation; "
            f"choose from {', '.join(DISAGGREGATIONS)}"
        )


def plan(name: str, given: dict[str, str], catalog: Catalog | None = None) -> Plan:
    """Every check of a report's parameters, before any kernel starts."""
    template = load_template(name)
    values = convert(template, given)
    threshold = check_threshold(given, load_policy())
    catalog = read_catalog() if catalog is None else catalog
    check_values(template, values, catalog)
    return Plan(template, values, threshold)


@contextmanager
def isolated_run(threshold: int | None) -> Iterator[Path]:
    """A fresh ledger (and a stricter policy, if asked) for one report's kernel; yields a scratch dir."""
    with tempfile.TemporaryDirectory(prefix="enclave-report-") as scratch:
        env = {"ENCLAVE_LEDGER_DIR": str(Path(scratch) / "ledger")}
        if threshold is not None:
            env["ENCLAVE_POLICY"] = str(write_policy(dataclasses.replace(load_policy(), threshold=threshold), scratch))
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            yield Path(scratch)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def write_policy(policy: Policy, directory: str) -> Path:
    """``policy`` as a policy file (for a report that raised the threshold)."""

    def literal(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, tuple | list):
            return "[" + ", ".join(literal(v) for v in value) + "]"
        if isinstance(value, str):
            return json.dumps(value)
        return repr(value)

    lines = ["[disclosure]"]
    for f in dataclasses.fields(policy):
        if f.name != "accounts":
            lines.append(f"{f.name} = {literal(getattr(policy, f.name))}")
    lines.append("[accounts]")
    lines += [f"{f.name} = {literal(getattr(policy.accounts, f.name))}" for f in dataclasses.fields(policy.accounts)]
    path = Path(directory) / "policy.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# jupyter_client picks a kernel's ports, frees them, and the kernel binds them: another process
# can take one in between, and the kernel dies before it answers. Nothing has run then.
DIED_AT_START = "Kernel died before replying to kernel_info"


def new_run() -> str:
    """A report run's id (in its audit events and its ``report.run`` record)."""
    return secrets.token_hex(6)


def execute(checked: Plan, executed: Path, scratch: Path, collected: list[dict] | None = None) -> None:
    """Run the template into ``executed``; papermill keeps a failed run's notebook there.

    The kernel's filter events are appended to ``collected`` (a failed run's too). A kernel that
    dies before it answers (a port taken between jupyter_client's choice and the kernel's bind)
    is started once more; any other failure is the caller's."""
    collected = [] if collected is None else collected
    for attempt in (1, 2):
        collected.clear()  # a kernel that died at start sent nothing worth keeping
        try:
            papermill.execute_notebook(
                str(checked.template.path),
                str(executed),
                parameters=checked.values,
                kernel_name=KERNEL,
                progress_bar=False,
                cwd=str(scratch),
                engine_name=ENGINE,
                collected=collected,
            )
            return
        except RuntimeError as error:
            if attempt == 2 or DIED_AT_START not in str(error):
                raise


def run_report(
    name: str,
    given: dict[str, str],
    out_dir: Path,
    *,
    catalog: Catalog | None = None,
    on_events: EventSink | None = None,
) -> ReportResult:
    """Execute template ``name`` with ``given`` parameters; write NAME.ipynb and NAME.html.

    The kernel's filter events, tagged with the run's id, go to ``on_events`` (default: sent
    on from this process, ``templates.kernel_events.forward_from_kernel``), also when the run
    fails (``RunFailed`` carries the id)."""
    checked = plan(name, given, catalog)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run, collected = new_run(), []
    with isolated_run(checked.threshold) as scratch:
        executed = scratch / f"{name}.ipynb"
        try:
            try:
                execute(checked, executed, scratch, collected)
            finally:
                events = tagged(collected, run, name, checked.institution)
                (on_events or forward_from_kernel)(events)
        except papermill.PapermillExecutionError as error:
            raise RunFailed(
                f"template {name} failed in cell {error.exec_count}: {error.ename}: {error.evalue}", run
            ) from None
        except Exception as error:  # kernel missing or dead, bad notebook
            raise RunFailed(f"template {name} could not run: {type(error).__name__}: {error}", run) from None
        html = scratch / f"{name}.html"
        html.write_text(render_html(executed), encoding="utf-8")
        notebook, page = out_dir / executed.name, out_dir / html.name
        shutil.move(executed, notebook)
        shutil.move(html, page)
    return ReportResult(notebook, page, checked.values, run, events)


def render_html(notebook: Path) -> str:
    """The executed report as HTML without code cells or prompts."""
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _resources = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    return body
