"""Secondary suppression: our ``protect`` against Tau-Argus OPT and the proven optimum.

Seeded 20×8 and 20×8×3 count tables (counts 10–199, about 20 % small cells of 1–9 and 5 %
zeros), all margins published, FREQ(10, 30): cells of 1–9 are primaries and need an attacker
interval of max(1, 30 % of the value) each way; zeros are never suppressed. For each table:

- ours: ``output_filters.engine.secondary.protect`` with the default policy (2 s time limit);
- the proven optimum: the same exact model with no time limit;
- Tau-Argus OPT (``pytauargus``, its HiGHS engine, unit cost so it too minimizes the number
  of cells), run in its own virtual environment, ``benchmarks/.venv-tauargus/``, made from
  ``benchmarks/requirements-tauargus.txt`` on first use;
- an independent attack (``scipy.optimize.linprog`` over the inner cells, written here) on
  every pattern: the failures column counts primaries left with too little room.

Two attacker models: the policy's (zeros are shown, so every suppressed cell is known to be
at least 1; the model ``protect`` uses) and Tau-Argus's (a-priori bounds [0, grand total]
only). Tau-Argus protects against the second; it is compared with ours under that model
(``protect`` with ``show_zeros=False``), and its patterns are also attacked under the first.
Prints tables; nothing is asserted.

    .venv/bin/python benchmarks/secondary_suppression.py [--seeds 5] [--no-tauargus]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from output_filters import Policy
from output_filters.engine.cell_suppression import suppress_system
from output_filters.engine.linear_system import LinearSystem, atoms_from_counts, table_cells
from output_filters.engine.secondary import protect

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-tauargus"
REQUIREMENTS = HERE / "requirements-tauargus.txt"

# Run inside the Tau-Argus environment: JSON job on stdin, JSON result on stdout. One record
# per counted unit with a response of 1, so each cell's value and frequency are its count.
DRIVER = r"""
import json, sys, tempfile, time
from pathlib import Path
from pytauargus.arb import micro_arb
from pytauargus.engine import run_batch
from pytauargus.micro import micro_asc_rda
from pytauargus.result import parse_simple_tab

job = json.load(sys.stdin)
dims = job["dimensions"]
micro = {d: [] for d in dims + ["one"]}
for *codes, n in job["cells"]:
    for d, code in zip(dims, codes):
        micro[d].extend([code] * n)
    micro["one"].extend([1] * n)
with tempfile.TemporaryDirectory(prefix="tauargus_") as folder:
    work = Path(folder)
    asc, rda, arb, out = (str(work / name) for name in ("micro.asc", "micro.rda", "job.arb", "out.tab"))
    micro_asc_rda(micro, asc_filename=asc, rda_filename=rda)
    micro_arb(arb_filename=arb, asc_filename=asc, rda_filename=rda, explanatory_vars=[dims], response_var="one",
              cost_var="-1", safety_rules="FREQ(10,30)", suppress=f"OPT(1,{job['max_seconds']})",
              output_names=[out], output_type="5", output_options="SO+")
    start = time.perf_counter()
    run_batch(arb)
    seconds = time.perf_counter() - start
    rows = parse_simple_tab(out, dims, "n")
print(json.dumps({"seconds": seconds, "cells": [[r[d] for d in dims] + [r["status"]] for r in rows]}))
"""


@dataclass
class Run:
    """One method on one table: cells suppressed, seconds, audit failures per attacker floor."""

    cells: int
    seconds: float
    optimal: bool = True
    failures: dict[int, int] = field(default_factory=dict)


def counts(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.integers(10, 200, size=shape)
    small = rng.random(shape) < 0.2
    values[small] = rng.integers(1, 10, size=small.sum())
    values[rng.random(shape) < 0.05] = 0
    return values


def extended(values: np.ndarray) -> np.ndarray:
    """The table with its margins: one more slot per axis holding the total."""
    out = values.astype(float)
    for axis in range(values.ndim):
        out = np.concatenate([out, out.sum(axis=axis, keepdims=True)], axis=axis)
    return out


def labels(shape: tuple[int, ...]) -> list[list[str]]:
    return [[f"d{d}_{i:02d}" for i in range(n)] for d, n in enumerate(shape)]


def pandas_table(values: np.ndarray) -> pd.DataFrame | pd.Series:
    names = labels(values.shape)
    if values.ndim == 2:
        return pd.DataFrame(values, index=names[0], columns=names[1])
    index = pd.MultiIndex.from_product(names, names=[f"d{d}" for d in range(values.ndim)])
    return pd.Series(values.ravel(), index=index)


# ---- the independent attacker -------------------------------------------------------------


def audit(values: np.ndarray, suppressed: np.ndarray, floor: float) -> int:
    """Primaries whose attacker interval is too narrow (LPs over the inner cells directly)."""
    shape, truth = values.shape, extended(values)
    total = float(values.sum())
    rows = []
    for position in np.ndindex(truth.shape):
        mask = np.zeros(shape, dtype=bool)
        mask[tuple(slice(None) if i == n else i for i, n in zip(position, shape, strict=True))] = True
        rows.append(mask.ravel().astype(float))
    rows = np.array(rows)
    hidden = suppressed.ravel()
    a_eq, b_eq = rows[~hidden], truth.ravel()[~hidden]
    a_ub = np.vstack([rows[hidden], -rows[hidden]])
    b_ub = np.concatenate([np.full(hidden.sum(), total), np.full(hidden.sum(), -floor)])
    failures = 0
    for cell in np.flatnonzero(hidden):
        value = truth.ravel()[cell]
        if not 0 < value < 10:
            continue
        level = max(1, math.ceil(0.3 * value - 1e-9))
        ends = []
        for sign in (1.0, -1.0):
            result = linprog(sign * rows[cell], A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, total))
            ends.append(sign * result.fun)
        low, high = ends
        failures += low > value - min(level, value - floor) + 1e-6 or high < value + min(level, total - value) - 1e-6
    return failures


# ---- the three methods ----------------------------------------------------------------------


def ours(values: np.ndarray, show_zeros: bool) -> tuple[Run, np.ndarray]:
    start = time.perf_counter()
    result = protect(pandas_table(values), Policy(show_zeros=show_zeros))
    seconds = time.perf_counter() - start
    hidden = np.asarray(result.table.isna()).reshape(tuple(n + 1 for n in values.shape))
    return Run(int(hidden.sum()), seconds, result.optimal), hidden


def optimum(values: np.ndarray, show_zeros: bool) -> tuple[Run, np.ndarray]:
    atoms = atoms_from_counts(pandas_table(values).astype(float))
    table = table_cells(atoms, list(atoms.dimensions))
    system = LinearSystem.link(atoms, [table])
    start = time.perf_counter()
    pattern = suppress_system(system, 10, 0.3, show_zeros, None)
    seconds = time.perf_counter() - start
    hidden = pattern.suppressed[system.positions[0]].reshape(tuple(n + 1 for n in values.shape))
    return Run(int(hidden.sum()), seconds, pattern.optimal), hidden


def tauargus_python() -> tuple[Path | None, str]:
    """The Tau-Argus environment's interpreter, made on first use, or why there is none."""
    python = VENV / "bin" / "python"
    if not python.exists():
        base = shutil.which("python3")
        if base is None:
            return None, "no python3 on PATH to make benchmarks/.venv-tauargus"
        made = subprocess.run([base, "-m", "venv", str(VENV)], capture_output=True, text=True)
        if made.returncode != 0:
            return None, f"python3 -m venv {VENV} failed: {made.stderr.strip()[-500:]}"
    pip = [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)]
    installed = subprocess.run(pip, capture_output=True, text=True)
    if installed.returncode != 0:
        return None, f"pip install -r {REQUIREMENTS.name} failed: {installed.stderr.strip()[-500:]}"
    check = subprocess.run([str(python), "-c", "import pytauargus"], capture_output=True, text=True)
    if check.returncode != 0:
        return None, f"pytauargus does not import: {check.stderr.strip()[-500:]}"
    return python, ""


def tauargus(python: Path, values: np.ndarray) -> tuple[Run, np.ndarray]:
    names = labels(values.shape)
    dims = [f"d{d}" for d in range(values.ndim)]
    cells = [[names[d][i] for d, i in enumerate(p)] + [int(values[p])] for p in np.ndindex(values.shape) if values[p]]
    job = {"dimensions": dims, "cells": cells, "max_seconds": 600}
    with tempfile.TemporaryDirectory(prefix="tauargus-run-") as scratch:  # Tau-Argus logs into its cwd
        script = Path(scratch) / "driver.py"
        script.write_text(DRIVER)
        done = subprocess.run(
            [str(python), str(script)], input=json.dumps(job), capture_output=True, text=True, cwd=scratch
        )
    if done.returncode != 0:
        raise RuntimeError(f"Tau-Argus failed: {done.stderr.strip()[-1000:]}")
    result = json.loads(done.stdout)
    hidden = np.zeros(tuple(n + 1 for n in values.shape), dtype=bool)
    for *codes, status in result["cells"]:
        position = tuple(len(names[d]) if code == "Total" else names[d].index(code) for d, code in enumerate(codes))
        hidden[position] = status in ("U", "M")
    return Run(int(hidden.sum()), result["seconds"]), hidden


# ---- the report -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--shapes", default="20x8,20x8x3")
    parser.add_argument("--no-tauargus", action="store_true", help="skip Tau-Argus (no virtual environment)")
    args = parser.parse_args()
    python, reason = (None, "skipped (--no-tauargus)") if args.no_tauargus else tauargus_python()
    if python is None:
        print(f"Tau-Argus: not run — {reason}")
    shapes = [tuple(int(n) for n in shape.split("x")) for shape in args.shapes.split(",")]
    policy_rows, argus_rows = [], []
    for shape in shapes:
        for seed in range(args.seeds):
            values = counts(seed, shape)
            name = f"{'×'.join(map(str, shape))} seed {seed}"
            primaries = int(((extended(values) > 0) & (extended(values) < 10)).sum())
            runs = {}
            for label, (run, hidden), floor in (
                ("ours", ours(values, True), 1.0),
                ("optimum", optimum(values, True), 1.0),
                ("ours, [0,T]", ours(values, False), 0.0),
                ("optimum, [0,T]", optimum(values, False), 0.0),
            ):
                run.failures[int(floor)] = audit(values, hidden, floor)
                runs[label] = run
            if python is not None:
                run, hidden = tauargus(python, values)
                run.failures = {0: audit(values, hidden, 0.0), 1: audit(values, hidden, 1.0)}
                runs["Tau-Argus"] = run
            policy_rows.append((name, primaries, runs["ours"], runs["optimum"]))
            argus_rows.append((name, primaries, runs["ours, [0,T]"], runs.get("Tau-Argus"), runs["optimum, [0,T]"]))
            print(f"  {name}: done", file=sys.stderr)
    report(policy_rows, argus_rows, reason)


def report(policy_rows: list, argus_rows: list, reason: str) -> None:
    print("\nPolicy model: zeros shown, a suppressed cell is known to be >= 1 (what protect uses)")
    print(f"{'table':<16}{'prim':>5}  {'ours':>5}{'s':>7}{'proven':>8}  {'optimum':>8}{'s':>8}  {'failures':>9}")
    totals = np.zeros(2)
    for name, primaries, mine, best in policy_rows:
        totals += [mine.cells, best.cells]
        proven = "yes" if mine.optimal else "no"
        failures = f"{mine.failures[1]}/{best.failures[1]}"
        print(
            f"{name:<16}{primaries:>5}  {mine.cells:>5}{mine.seconds:>7.2f}{proven:>8}  "
            f"{best.cells:>8}{best.seconds:>8.2f}  {failures:>9}"
        )
    print(f"{'total':<16}{'':>5}  {totals[0]:>5.0f}{'':>15}  {totals[1]:>8.0f}")
    print(f"ours / optimum = {totals[0] / totals[1]:.3f}   (failures: ours/optimum, independent attack)")

    print("\nTau-Argus's model: a-priori bounds [0, grand total] only (protect with show_zeros=False)")
    print(
        f"{'table':<16}{'prim':>5}  {'ours':>5}{'s':>7}  {'Tau-Argus':>9}{'s':>7}  {'optimum':>8}{'s':>8}"
        f"  {'failures':>9}  {'TA at >=1':>9}"
    )
    totals = np.zeros(3)
    for name, primaries, mine, argus, best in argus_rows:
        argus_cells = f"{argus.cells:>9}{argus.seconds:>7.2f}" if argus else f"{'—':>9}{'':>7}"
        argus_fail = f"{argus.failures[0]}" if argus else "—"
        failures = f"{mine.failures[0]}/{argus_fail}/{best.failures[0]}"
        at_one = f"{argus.failures[1]}" if argus else "—"
        totals += [mine.cells, argus.cells if argus else np.nan, best.cells]
        print(
            f"{name:<16}{primaries:>5}  {mine.cells:>5}{mine.seconds:>7.2f}  {argus_cells}  "
            f"{best.cells:>8}{best.seconds:>8.2f}  {failures:>9}  {at_one:>9}"
        )
    argus_total = f"{totals[1]:>9.0f}" if not np.isnan(totals[1]) else f"{'—':>9}"
    print(f"{'total':<16}{'':>5}  {totals[0]:>5.0f}{'':>7}  {argus_total}{'':>7}  {totals[2]:>8.0f}")
    line = f"ours / optimum = {totals[0] / totals[2]:.3f}"
    if not np.isnan(totals[1]):
        line += f"   ours / Tau-Argus = {totals[0] / totals[1]:.3f}   Tau-Argus / optimum = {totals[1] / totals[2]:.3f}"
    else:
        line += f"   Tau-Argus: not run — {reason}"
    print(line)
    print("failures: ours/Tau-Argus/optimum under [0,T]; 'TA at >=1': Tau-Argus's patterns under the policy model")


if __name__ == "__main__":
    main()
