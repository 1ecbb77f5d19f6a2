"""Secondary suppression: our engine against Tau-Argus OPT and the proven optimum, same run.

Seeded count tables of 20×8, 20×8×3 and 40×10×4 cells (counts 10–199, a share of 10, 20 or
30 % small cells of 1–9, 5 % zeros), all margins published, FREQ(10, 30): cells of 1–9 are
primaries and need an attacker interval of max(1, 30 % of the value) each way; zeros are
never suppressed. For each table:

- ours: ``output_filters.engine.secondary.protect`` with the consortium's policy
  (``policy.toml``: its deterministic work budget), timed, then protected again in a fresh
  process while two busy loops load both cores: "same" says whether both gave the same
  pattern byte for byte;
- the proven optimum: the same engine with no budget (``suppress_system``);
- Tau-Argus OPT (``pytauargus``, its HiGHS engine, unit cost so it too minimizes the number
  of cells, with its own time limit of ``--tauargus-minutes``, 10 by default), run in its own
  virtual environment, ``benchmarks/.venv-tauargus/``, made from
  ``benchmarks/requirements-tauargus.txt`` on first use;
- an independent attack (``scipy.optimize.linprog`` over the inner cells, written here) on
  every pattern: the failures columns count primaries left with too little room.

Two attacker models: the policy's (zeros are shown, so every suppressed cell is known to be
at least 1; the model ``protect`` uses) and Tau-Argus's (a-priori bounds [0, grand total]
only). Tau-Argus protects against the second; it is compared with ours under that model
(``protect`` with ``show_zeros=False``), and its patterns are also attacked under the first.
Prints tables; nothing is asserted.

    .venv/bin/python benchmarks/secondary_suppression.py [--seeds 3] [--shapes 20x8,20x8x3,40x10x4]
        [--shares 10,20,30] [--no-tauargus] [--tauargus-minutes 10]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import linprog

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from output_filters.engine.cell_suppression import suppress_system  # noqa: E402
from output_filters.engine.linear_system import LinearSystem, atoms_from_counts, table_cells  # noqa: E402
from output_filters.engine.secondary import protect  # noqa: E402
from output_filters.policy import load_policy  # noqa: E402

VENV = HERE / ".venv-tauargus"
REQUIREMENTS = HERE / "requirements-tauargus.txt"
UNLIMITED = {"suppression_work": 10**15}  # the proven optimum: no budget

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
              cost_var="-1", safety_rules="FREQ(10,30)", suppress=f"OPT(1,{job['max_minutes']})",
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
    same: bool | None = None  # ours only: the same pattern again in a fresh process
    cpu: float | None = None  # ours only: CPU seconds of this process (HiGHS runs on one thread)


def counts(seed: int, shape: tuple[int, ...], share: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.integers(10, 200, size=shape)
    small = rng.random(shape) < share
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
    """Primaries whose attacker interval is too narrow (LPs over the inner cells directly).

    The variables are the suppressed inner cells, each in [floor, total]; every margin is a
    sum of inner cells: equal to its value when published, in [floor, total] when suppressed
    (published inner cells are constants, moved to the right-hand side).
    """
    shape, truth = values.shape, extended(values)
    total = float(values.sum())
    # each extended position as a sum of inner cells: Kronecker product of [identity; ones]
    rows = sp.csr_array(np.ones((1, 1)))
    for n in shape:
        rows = sp.kron(rows, sp.vstack([sp.identity(n), np.ones((1, n))]), format="csr")
    hidden = suppressed.ravel()
    inner = np.zeros(truth.shape, dtype=bool)
    inner[tuple(slice(0, n) for n in shape)] = True
    inner = inner.ravel()
    inner_hidden = suppressed[tuple(slice(0, n) for n in shape)].ravel()
    free = sp.csr_array(rows[:, inner_hidden])  # extended positions over the suppressed inner cells
    known = rows[:, ~inner_hidden] @ values.ravel()[~inner_hidden].astype(float)
    margin = ~inner
    a_eq, b_eq = free[margin & ~hidden], truth.ravel()[margin & ~hidden] - known[margin & ~hidden]
    touched = np.diff(a_eq.indptr) > 0
    a_eq, b_eq = a_eq[touched], b_eq[touched]
    part = free[margin & hidden]
    a_ub = sp.vstack([part, -part], format="csr") if part.shape[0] else None
    rest = known[margin & hidden]
    b_ub = np.concatenate([total - rest, -(floor - rest)]) if part.shape[0] else None
    bounds = (floor, total)
    failures = 0
    for cell in np.flatnonzero(hidden):
        value = truth.ravel()[cell]
        if not 0 < value < 10:
            continue
        level = max(1, math.ceil(0.3 * value - 1e-9))
        objective = free[[cell]].toarray().ravel()
        ends = []
        for sign in (1.0, -1.0):
            result = linprog(
                sign * objective,
                A_ub=a_ub,
                b_ub=b_ub,
                A_eq=a_eq if a_eq.shape[0] else None,
                b_eq=b_eq if a_eq.shape[0] else None,
                bounds=bounds,
                method="highs",
            )
            if result.status != 0:
                raise RuntimeError(f"independent attack LP failed: {result.message}")
            ends.append(sign * result.fun + known[cell])
        low, high = ends
        failures += low > value - min(level, value - floor) + 1e-6 or high < value + min(level, total - value) - 1e-6
    return failures


# ---- the three methods ----------------------------------------------------------------------


def pattern_of(values: np.ndarray, show_zeros: bool) -> tuple[np.ndarray, bool]:
    """Our published pattern for a table (suppressed cells of the table with margins)."""
    policy = replace(load_policy(), show_zeros=show_zeros)
    result = protect(pandas_table(values), policy)
    return np.asarray(result.table.isna()).reshape(tuple(n + 1 for n in values.shape)), result.optimal


def fingerprint(hidden: np.ndarray) -> str:
    return hashlib.sha256(np.packbits(hidden.ravel()).tobytes()).hexdigest()


# a bounded busy loop (60 s at most), killed as soon as the loaded run is done
BUSY = "import time\nprint('busy', flush=True)\nend = time.monotonic() + 60\nwhile time.monotonic() < end:\n    pass\n"


def ours(values: np.ndarray, show_zeros: bool, job: dict) -> tuple[Run, np.ndarray]:
    start, cpu = time.perf_counter(), time.process_time()
    hidden, optimal = pattern_of(values, show_zeros)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    # the same table again in a fresh process, with both cores kept busy meanwhile
    busy = [subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for loop in busy:
            loop.stdout.readline()
        again = subprocess.run(
            [sys.executable, __file__, "--pattern", json.dumps({**job, "show_zeros": show_zeros})],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        for loop in busy:
            loop.kill()
            loop.wait()
    same = again.stdout.strip() == fingerprint(hidden)
    return Run(int(hidden.sum()), seconds, optimal, same=same, cpu=cpu), hidden


def optimum(values: np.ndarray, show_zeros: bool) -> tuple[Run, np.ndarray]:
    atoms = atoms_from_counts(pandas_table(values).astype(float))
    table = table_cells(atoms, list(atoms.dimensions))
    system = LinearSystem.link(atoms, [table])
    policy = replace(load_policy(), show_zeros=show_zeros, **UNLIMITED)
    start = time.perf_counter()
    pattern = suppress_system(system, policy)
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


def tauargus(python: Path, values: np.ndarray, minutes: int) -> tuple[Run, np.ndarray]:
    names = labels(values.shape)
    dims = [f"d{d}" for d in range(values.ndim)]
    cells = [[names[d][i] for d, i in enumerate(p)] + [int(values[p])] for p in np.ndindex(values.shape) if values[p]]
    job = {"dimensions": dims, "cells": cells, "max_minutes": minutes}
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
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shapes", default="20x8,20x8x3,40x10x4")
    parser.add_argument("--shares", default="10,20,30", help="percent of small cells")
    parser.add_argument("--no-tauargus", action="store_true", help="skip Tau-Argus (no virtual environment)")
    parser.add_argument("--tauargus-minutes", type=int, default=10, help="Tau-Argus OPT's own time limit per table")
    parser.add_argument("--pattern", help=argparse.SUPPRESS)  # internal: one table's fingerprint
    args = parser.parse_args()
    if args.pattern:
        job = json.loads(args.pattern)
        values = counts(job["seed"], tuple(job["shape"]), job["share"])
        print(fingerprint(pattern_of(values, job["show_zeros"])[0]))
        return
    python, reason = (None, "skipped (--no-tauargus)") if args.no_tauargus else tauargus_python()
    if python is None:
        print(f"Tau-Argus: not run — {reason}")
    rows = []
    for shape in [tuple(int(n) for n in shape.split("x")) for shape in args.shapes.split(",")]:
        for share in [int(s) / 100 for s in args.shares.split(",")]:
            for seed in range(args.seeds):
                rows.append(table_row(shape, share, seed, python, args.tauargus_minutes))
                print(f"  {rows[-1]['name']}: done", file=sys.stderr, flush=True)
    report(rows, reason)


def table_row(shape: tuple[int, ...], share: float, seed: int, python: Path | None, minutes: int) -> dict:
    values = counts(seed, shape, share)
    job = {"seed": seed, "shape": list(shape), "share": share}
    truth = extended(values)
    row = {
        "name": f"{'×'.join(map(str, shape))} {share:.0%} s{seed}",
        "group": f"{'×'.join(map(str, shape))} {share:.0%}",
        "primaries": int(((truth > 0) & (truth < 10)).sum()),
    }
    for label, (run, hidden), floor in (
        ("ours", ours(values, True, job), 1.0),
        ("optimum", optimum(values, True), 1.0),
        ("ours, [0,T]", ours(values, False, job), 0.0),
        ("optimum, [0,T]", optimum(values, False), 0.0),
    ):
        run.failures[int(floor)] = audit(values, hidden, floor)
        row[label] = run
    if python is not None:
        run, hidden = tauargus(python, values, minutes)
        run.failures = {0: audit(values, hidden, 0.0), 1: audit(values, hidden, 1.0)}
        row["Tau-Argus"] = run
    return row


def report(rows: list[dict], reason: str) -> None:
    argus = all("Tau-Argus" in row for row in rows)
    for model, mine, best, floor in (
        ("Policy model: zeros shown, a suppressed cell is known to be >= 1 (what protect uses)", "ours", "optimum", 1),
        (
            "Tau-Argus's model: a-priori bounds [0, grand total] only (protect with show_zeros=False)",
            "ours, [0,T]",
            "optimum, [0,T]",
            0,
        ),
    ):
        print(f"\n{model}")
        print(
            f"{'table':<18}{'prim':>5}  {'ours':>5}{'s':>6}{'cpu':>6}{'same':>5}"
            f"  {'T-A':>5}{'s':>7}  {'opt':>5}{'s':>7}"
            f"  {'fail ours/T-A/opt':>17}"
        )
        for row in rows:
            m, b, a = row[mine], row[best], row.get("Tau-Argus")
            argus_cells = f"{a.cells:>5}{a.seconds:>7.1f}" if a else f"{'—':>5}{'':>7}"
            fails = f"{m.failures[floor]}/{a.failures[floor] if a else '—'}/{b.failures[floor]}"
            print(
                f"{row['name']:<18}{row['primaries']:>5}  {m.cells:>5}{m.seconds:>6.2f}{m.cpu:>6.2f}"
                f"{'yes' if m.same else 'NO':>5}"
                f"  {argus_cells}  {b.cells:>5}{b.seconds:>7.1f}  {fails:>17}"
            )
        print(
            f"\n{'size, small cells':<18}{'tables':>7}  {'ours':>6}{'T-A':>6}{'opt':>6}  {'s max':>6}"
            f"  {'> T-A':>6}  {'fails':>6}  {'same':>5}"
        )
        groups = dict.fromkeys(row["group"] for row in rows)
        for group in groups:
            members = [row for row in rows if row["group"] == group]
            worse = sum(r[mine].cells > r["Tau-Argus"].cells for r in members) if argus else "—"
            fails = sum(r[mine].failures[floor] for r in members)
            same = "yes" if all(r[mine].same for r in members) else "NO"
            cells = {key: sum(r[key].cells for r in members) for key in (mine, best)}
            argus_cells = sum(r["Tau-Argus"].cells for r in members) if argus else "—"
            print(
                f"{group:<18}{len(members):>7}  {cells[mine]:>6}{argus_cells!s:>6}"
                f"{cells[best]:>6}  {max(r[mine].seconds for r in members):>6.2f}  {worse!s:>6}  {fails:>6}"
                f"  {same:>5}"
            )
        ours_total, best_total = sum(r[mine].cells for r in rows), sum(r[best].cells for r in rows)
        line = f"ours / optimum = {ours_total / best_total:.3f}"
        if argus:
            argus_total = sum(r["Tau-Argus"].cells for r in rows)
            line += f"   ours / Tau-Argus = {ours_total / argus_total:.3f}   Tau-Argus / optimum = "
            line += f"{argus_total / best_total:.3f}"
        else:
            line += f"   Tau-Argus: not run — {reason}"
        print(line + f"   slowest table: {max(r[mine].seconds for r in rows):.2f} s")
    if argus:
        bad = sum(row["Tau-Argus"].failures[1] for row in rows)
        print(f"\nTau-Argus's patterns attacked under the policy model (suppressed cells >= 1): {bad} primaries fail")
    targets(rows, argus)


def targets(rows: list[dict], argus: bool) -> None:
    """The targets: no more cells than Tau-Argus on any table (under its model), at most 1.05×
    the optimum in total (under each model), at most 2 s per table, the same pattern again."""
    print("\nTargets")
    if argus:
        worse = [r["name"] for r in rows if r["ours, [0,T]"].cells > r["Tau-Argus"].cells]
        print(f"  no more cells than Tau-Argus on every table: {'yes' if not worse else 'NO: ' + ', '.join(worse)}")
    for mine, best in (("ours", "optimum"), ("ours, [0,T]", "optimum, [0,T]")):
        ratio = sum(r[mine].cells for r in rows) / sum(r[best].cells for r in rows)
        print(f"  {mine} <= 1.05 x the optimum in total: {'yes' if ratio <= 1.05 else 'NO'} ({ratio:.3f})")
    runs = [r[mine] for r in rows for mine in ("ours", "ours, [0,T]")]
    for what, key in (("wall clock", "seconds"), ("CPU", "cpu")):
        slow = [r["name"] for r in rows for mine in ("ours", "ours, [0,T]") if getattr(r[mine], key) > 2.0]
        slowest = max(getattr(run, key) for run in runs)
        verdict = "yes" if not slow else f"NO on {len(slow)}: " + ", ".join(dict.fromkeys(slow))
        print(f"  <= 2 s per table, {what}: {verdict} (slowest {slowest:.2f} s)")
    print(f"  load average (1 min) at the end of the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    fails = sum(r[mine].failures[f] for r in rows for mine, f in (("ours", 1), ("ours, [0,T]", 0)))
    print(f"  no primary left with too little room (independent attack): {'yes' if not fails else f'NO: {fails}'}")
    same = all(r[mine].same for r in rows for mine in ("ours", "ours, [0,T]"))
    print(f"  the same pattern in a fresh process under CPU load: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
