"""Time per output of a researcher's session with the ledger, against the same tables alone.

Runs the 35 ordinary cells of ``tests/test_filter_session.py`` (counts, margins added later,
shares, one's own college, the other colleges, re-displays, rates, a merge of K-12 and college
records, a 3-way crosstab) over a demo consortium, in this process with the filter's guards
installed, in the test's order and in shuffled orders: the seconds each output takes with the
ledger (the joint audit of every table shown before over the same records, the implied tables
included), against the baseline of the same cells with a ledger that forgets every table (each
protected alone). Prints a table; nothing is asserted. Target: at most 2 s per output.

    .venv/bin/python benchmarks/linked_session.py [--students 3000] [--seed 7] [--orders 3]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def demo(students: int, seed: int) -> Path:
    """A demo consortium built once per size and seed (kept under the system's temp directory)."""
    var = Path(tempfile.gettempdir()) / f"enclave-bench-demo-{students}-{seed}"
    if not (var / "warehouse.db").exists():
        env = dict(os.environ, ENCLAVE_VAR=str(var), ENCLAVE_ISOLATION="off")
        command = [sys.executable, "-m", "hub.cli", "demo", "build", "--students", str(students), "--seed", str(seed)]
        subprocess.run(command, check=True, env=env, capture_output=True)
    return var


def run(cells, forget: bool) -> tuple[list[float], int]:
    """Seconds per table-showing cell, and how many were refused."""
    import pandas as pd

    from kernels import data
    from output_filters import DisclosureError, guards
    from output_filters.engine import secondary
    from output_filters.policy import load_policy
    from output_filters.session import FilterSession

    secondary._CACHE.clear()  # every variant solves its tables itself
    session = FilterSession.start(load_policy(), None, persistent=False)
    guards.install(session)
    namespace = {"pd": pd, "data": data}
    seconds, refused = [], 0
    try:
        for cell in cells:
            if forget:
                session.ledger.sets.clear()
            start = time.perf_counter()
            try:
                exec(cell.code, namespace)  # noqa: S102 (the session's own cells)
            except DisclosureError:
                refused += 1
            if cell.table:
                seconds.append(time.perf_counter() - start)
    finally:
        guards.uninstall()
    return seconds, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--orders", type=int, default=3)
    args = parser.parse_args()
    var = demo(args.students, args.seed)
    os.environ["ENCLAVE_VAR"] = str(var)
    from tests.test_filter_session import _choices, session_cells
    from warehouse.db import connect
    from warehouse.read import read_table

    engine = connect(f"sqlite:///{var / 'warehouse.db'}")
    records = {t: read_table(engine, t) for t in ("cc_students", "k12_enrollment")}
    cells = session_cells(*_choices(records))
    orders = [("the test's order", cells)]
    for number in range(1, args.orders):
        setup = [c for c in cells if not c.table or c.name in ("graduates", "the other colleges", "own district")]
        rest = [c for c in cells if c not in setup]
        random.Random(number).shuffle(rest)
        first = [c for c in setup if not c.table] + [c for c in setup if c.table]
        orders.append((f"shuffled ({number})", first + rest))
    print(f"a researcher's session, {sum(1 for c in cells if c.table)} outputs, demo of {args.students:,} students")
    print(f"{'order':<18}{'variant':<28}{'median s':>10}{'p95 s':>8}{'max s':>8}{'refused':>9}")
    for name, order in orders:
        for variant, forget in (("each table alone (baseline)", True), ("with the ledger", False)):
            seconds, refused = run(order, forget)
            p95 = float(np.percentile(seconds, 95))
            print(f"{name:<18}{variant:<28}{np.median(seconds):>10.2f}{p95:>8.2f}{max(seconds):>8.2f}{refused:>9}")


if __name__ == "__main__":
    main()
