"""Cost of a protected crosstab with margins: the Enclave filter against ACRO 1.0.2.

Times ``pd.crosstab([institution, year], ethnicity, margins=True)`` over synthetic student
records (13 institutions of skewed sizes, 3 academic years, 9 ethnicities in California-like
shares, seeded), each protected variant against plain pandas in its own environment:

- here (pandas 3): plain pandas, then the same call with the filter's aggregation guard
  installed and the frame marked record-level (primary and secondary suppression);
- ACRO's environment (ACRO pins pandas <= 2.3.3), a virtual environment of its own,
  ``benchmarks/.venv-acro/``, made from ``benchmarks/requirements-acro.txt`` on first use and
  remade when that file changes: plain pandas 2.3.3, then
  ``ACRO(suppress=True).crosstab(...)``, in a child process working in a temporary directory
  with ACRO's logging silenced.

Both sides read the same records from one CSV file (each into its pandas's default string
dtype). Each variant is the median of ``--repeat`` runs after one warm-up. Also printed: the
cells each suppressed, and whether the margins still count the suppressed records (ACRO
deletes the flagged records and recomputes the table). If ACRO fails on the call (it raises
``cannot insert ..., already exists`` when a column label equals a row variable's name), the
next form it accepts is timed on both sides and the output says so. Nothing is asserted.

    .venv/bin/python benchmarks/crosstab_vs_acro.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from crosstab_overhead import records as overhead_records  # the script's own folder is on sys.path

from kernels.marks import mark_record_level
from output_filters import Policy, guards
from output_filters.session import FilterSession

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-acro"
REQUIREMENTS = HERE / "requirements-acro.txt"
STAMP = VENV / "requirements.sha256"
MARGINS = "All"
TARGET = 1.3


@dataclass(frozen=True)
class Form:
    """One way of asking for the table: row variables, column variables, margins or not."""

    index: tuple[str, ...]
    columns: tuple[str, ...]
    margins: bool = True

    def call(self) -> str:
        def side(names: tuple[str, ...]) -> str:
            return names[0] if len(names) == 1 else f"[{', '.join(names)}]"

        return f"pd.crosstab({side(self.index)}, {side(self.columns)}, margins={self.margins})"

    def title(self) -> str:
        margins = "with margins" if self.margins else "without margins"
        return f"crosstab {margins}, {' × '.join(self.index + self.columns)}"


# Tried in order until ACRO accepts one; the first is the table asked for.
FORMS = (
    Form(("institution", "year"), ("ethnicity",)),
    Form(("institution",), ("year", "ethnicity")),
    Form(("institution", "year"), ("ethnicity",), margins=False),
    Form(("institution",), ("ethnicity",)),
)

# Runs in ACRO's environment: JSON job on stdin, JSON result written to job["out"].
ACRO_SIDE = r"""
import json, logging, os, statistics, sys, time, traceback, warnings
from importlib.metadata import version

logging.disable(logging.CRITICAL)
warnings.simplefilter("ignore")
job = json.load(sys.stdin)
os.chdir(job["workdir"])
import pandas as pd
from acro import ACRO

logging.disable(logging.CRITICAL)  # ACRO configures logging when imported


def seconds(function, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def axis(frame, names):
    return frame[names[0]] if len(names) == 1 else [frame[name] for name in names]


def labels(index):
    return [list(label) if isinstance(label, tuple) else label for label in index]


def encode(table):
    return {"index": labels(table.index), "columns": labels(table.columns),
            "index_names": list(table.index.names), "column_names": list(table.columns.names),
            "values": table.astype(float).to_numpy().tolist()}


frame = pd.read_csv(job["csv"])
session = ACRO(suppress=True)
result = {"pandas": pd.__version__, "acro": version("acro"), "failures": []}
for form in job["forms"]:
    index, columns = axis(frame, form["index"]), axis(frame, form["columns"])
    suppressed = lambda: session.crosstab(index, columns, margins=form["margins"])
    plain = lambda: pd.crosstab(index, columns, margins=form["margins"])
    try:
        table = suppressed()  # the warm-up, and the table reported
    except Exception as error:
        where = traceback.extract_tb(error.__traceback__)[-1]
        place = f"{where.filename.split('site-packages/')[-1]}:{where.lineno} {where.name}"
        result["failures"].append({"form": form, "error": f"{type(error).__name__}: {error}", "where": place})
        continue
    plain()
    result.update(form=form, plain=seconds(plain, job["repeat"]), suppressed=seconds(suppressed, job["repeat"]),
                  table=encode(table))
    break
with open(job["out"], "w") as handle:
    json.dump(result, handle, default=str)
"""


# ---- the records ------------------------------------------------------------------------------


def records(rows: int, seed: int) -> pd.DataFrame:
    """The same synthetic records as benchmarks/crosstab_overhead.py."""
    return overhead_records(rows, seed)


def axis(frame: pd.DataFrame, names: tuple[str, ...]) -> pd.Series | list[pd.Series]:
    return frame[names[0]] if len(names) == 1 else [frame[name] for name in names]


def seconds(function: Callable[[], Any], repeat: int) -> float:
    """Median wall time of ``repeat`` calls (the caller has warmed up)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---- ACRO's side --------------------------------------------------------------------------------


def acro_python() -> tuple[Path | None, str]:
    """ACRO's interpreter (the environment made or remade as needed), or why there is none."""
    python = VENV / "bin" / "python"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        return python, ""
    base = shutil.which("python3")
    if base is None:
        return None, f"no python3 on PATH to make {VENV.name}"
    print(f"making {VENV} from {REQUIREMENTS.name} ...", file=sys.stderr)
    steps = (
        [base, "-m", "venv", "--clear", str(VENV)],
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
        [str(python), "-c", "import acro"],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            return None, f"{' '.join(step[-3:])} failed: {done.stderr.strip()[-500:]}"
    STAMP.write_text(digest + "\n")
    return python, ""


def run_acro(python: Path, csv: Path, workdir: Path, repeat: int) -> dict:
    """Time ACRO in its environment: the first form it accepts, and the failures before it."""
    script, out = workdir / "acro_side.py", workdir / "acro_result.json"
    script.write_text(ACRO_SIDE)
    job = {"csv": str(csv), "workdir": str(workdir), "out": str(out), "repeat": repeat}
    job["forms"] = [asdict(form) for form in FORMS]
    done = subprocess.run([str(python), str(script)], input=json.dumps(job), capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        return {"error": f"the ACRO process failed: {done.stderr.strip()[-1000:]}", "failures": []}
    return json.loads(out.read_text())


def decode(encoded: dict) -> pd.DataFrame:
    def labels(values: list, names: list) -> pd.Index:
        if values and isinstance(values[0], list):
            return pd.MultiIndex.from_tuples([tuple(value) for value in values], names=names)
        return pd.Index(values, name=names[0])

    index = labels(encoded["index"], encoded["index_names"])
    columns = labels(encoded["columns"], encoded["column_names"])
    return pd.DataFrame(np.array(encoded["values"], dtype=float), index=index, columns=columns)


def form_of(encoded: dict) -> Form:
    return Form(tuple(encoded["index"]), tuple(encoded["columns"]), bool(encoded["margins"]))


# ---- our side -----------------------------------------------------------------------------------


def run_ours(frame: pd.DataFrame, form: Form, repeat: int) -> tuple[float, float, pd.DataFrame, pd.DataFrame]:
    """(plain seconds, filtered seconds, plain table, filtered table) for ``form``."""

    def call() -> pd.DataFrame:
        return pd.crosstab(axis(frame, form.index), axis(frame, form.columns), margins=form.margins)

    plain_table = call()  # the warm-up
    plain = seconds(call, repeat)
    guards.install(FilterSession.start(Policy(), None, persistent=False))
    mark_record_level(frame, "benchmark")
    try:
        filtered_table = call()  # the warm-up, and the table reported
        filtered = seconds(call, repeat)
    finally:
        guards.uninstall()
        frame.attrs.clear()
    return plain, filtered, plain_table, filtered_table


# ---- the report ---------------------------------------------------------------------------------


def margin_masks(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    rows = np.asarray(table.index.get_level_values(0) == MARGINS)
    columns = np.asarray(table.columns.get_level_values(0) == MARGINS)
    return rows, columns


def compare(table: pd.DataFrame, plain: pd.DataFrame) -> dict[str, Any]:
    """Cells of a protected ``table`` against the full data's ``plain`` table (same labels)."""
    present = np.outer(plain.index.isin(table.index), plain.columns.isin(table.columns))
    values = table.reindex(index=plain.index, columns=plain.columns).to_numpy(dtype=float)
    truth = plain.to_numpy(dtype=float)
    rows, columns = margin_masks(plain)
    margins = rows[:, None] | columns[None, :]
    hidden, shown = present & np.isnan(values), present & ~np.isnan(values)
    grand = (rows[:, None] & columns[None, :]) & present
    return {
        "cells": truth.size,
        "absent": int((~present).sum()),
        "inner hidden": int((hidden & ~margins).sum()),
        "inner changed": int((shown & ~margins & (values != truth)).sum()),
        "margins": int(margins.sum()),
        "margins hidden": int((hidden & margins).sum()),
        "margins equal": int((shown & margins & (values == truth)).sum()),
        "margins smaller": int((shown & margins & (values < truth)).sum()),
        "margins larger": int((shown & margins & (values > truth)).sum()),
        "grand": float(values[grand][0]) if grand.any() else None,
        "grand truth": float(truth[rows[:, None] & columns[None, :]][0]) if grand.any() else None,
    }


def suppression_line(name: str, cells: dict[str, Any]) -> str:
    hidden = cells["inner hidden"] + cells["margins hidden"]
    parts = f"{cells['inner hidden']} inner, {cells['margins hidden']} margin"
    line = f"  {name:<22}{hidden:>4} of {cells['cells']} ({parts})"
    if cells["inner changed"]:
        line += f"; {cells['inner changed']} published inner cells differ from the full data"
    if cells["absent"]:
        line += f"; {cells['absent']} cells absent from its table"
    return line


def margin_line(name: str, cells: dict[str, Any]) -> str:
    line = (
        f"  {name:<22}{cells['margins equal']} of {cells['margins']} margin cells equal the full-data totals, "
        f"{cells['margins smaller']} smaller, {cells['margins larger']} larger, {cells['margins hidden']} suppressed"
    )
    if cells["grand"] is not None:
        line += f"; grand total {cells['grand']:,.0f} of {cells['grand truth']:,.0f}"
    if cells["margins smaller"] or cells["margins larger"]:
        return line + "\n" + " " * 24 + "-> the margins leave out the suppressed records (recomputed without them)"
    return line + "\n" + " " * 24 + "-> the margins still count the suppressed records"


def header(args: argparse.Namespace, form: Form, acro: dict) -> None:
    print(f"\n{form.title()}, {args.rows:,} records, median of {args.repeat}")
    print(f"form: {form.call()}, the same on both sides")
    for failure in acro.get("failures", []):
        print(f"ACRO could not run {form_of(failure['form']).call()}: {failure['error']} ({failure['where']})")
    if form != FORMS[0] and "table" in acro:
        print(f"ACRO cannot do the table asked for in any form tried; timed the closest it does: {form.call()}")


def timings(plain: float, filtered: float, acro: dict) -> None:
    row = "{:<34}{:>9}  {:>20}"
    print(row.format("variant", "seconds", "ratio to its pandas"))
    print(row.format(f"pandas {pd.__version__} (baseline)", f"{plain:.3f}", "1.00"))
    print(row.format("Enclave filter", f"{filtered:.3f}", f"{filtered / plain:.2f}"))
    if "table" in acro:
        ratio = acro["suppressed"] / acro["plain"]
        print(row.format(f"pandas {acro['pandas']} (ACRO baseline)", f"{acro['plain']:.3f}", "1.00"))
        print(row.format(f"ACRO {acro['acro']} suppress=True", f"{acro['suppressed']:.3f}", f"{ratio:.2f}"))
    else:
        reason = acro.get("error", "it accepted no form")
        print(row.format("ACRO suppress=True", "—", "—") + f"   not run: {reason}")
    print(f"target for the Enclave filter: <= {TARGET}x its pandas")


def report(args: argparse.Namespace, form: Form, ours: tuple, acro: dict) -> None:
    plain, filtered, plain_table, filtered_table = ours
    header(args, form, acro)
    timings(plain, filtered, acro)
    checked = {"Enclave filter": compare(filtered_table, plain_table)}
    if "table" in acro:
        checked["ACRO suppress=True"] = compare(decode(acro["table"]), plain_table)
    print("cells suppressed (margins included):")
    for name, cells in checked.items():
        print(suppression_line(name, cells))
    if form.margins:
        print("margins against the full data:")
        for name, cells in checked.items():
            print(margin_line(name, cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    python, reason = acro_python()
    with tempfile.TemporaryDirectory(prefix="crosstab_vs_acro_") as work:
        workdir = Path(work)
        csv = workdir / "records.csv"
        records(args.rows, args.seed).to_csv(csv, index=False)
        acro = run_acro(python, csv, workdir, args.repeat) if python else {"error": reason, "failures": []}
        form = form_of(acro["form"]) if "form" in acro else FORMS[0]
        ours = run_ours(pd.read_csv(csv), form, args.repeat)
    report(args, form, ours, acro)


if __name__ == "__main__":
    main()
