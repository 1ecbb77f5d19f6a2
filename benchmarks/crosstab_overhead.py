"""Cost of the output filter on a crosstab with margins over record-level data.

Times ``pd.crosstab([institution, year], ethnicity, margins=True)`` over synthetic records, plain
pandas (the baseline) against the same call with the filter's guards installed and the input
marked record-level: the first display (a fresh ledger: suppression, secondary suppression and
the ledger's bookkeeping included) and the same table shown again (the ledger's answer).
Prints a table; nothing is asserted.

    .venv/bin/python benchmarks/crosstab_overhead.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from kernels.marks import mark_record_level
from output_filters import Policy, guards
from output_filters.session import FilterSession


def records(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    institutions = [f"I{n:02d}" for n in range(13)]
    ethnicities = [
        "Hispanic/Latino",
        "White",
        "Asian",
        "Black/African American",
        "Two or More",
        "Filipino",
        "Not Reported",
        "American Indian/Alaska Native",
        "Pacific Islander",
    ]
    weights = np.array([55, 21, 10, 5, 4, 2.5, 1.6, 0.5, 0.4])
    return pd.DataFrame(
        {
            "institution": rng.choice(institutions, rows, p=np.linspace(3, 0.2, 13) / np.linspace(3, 0.2, 13).sum()),
            "year": rng.choice(["2022-23", "2023-24", "2024-25"], rows),
            "ethnicity": rng.choice(ethnicities, rows, p=weights / weights.sum()),
        }
    )


def timed(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    frame = records(args.rows)

    def plain():
        return pd.crosstab([frame.institution, frame.year], frame.ethnicity, margins=True)

    baseline = timed(plain, args.repeat)
    mark_record_level(frame, "benchmark")
    firsts = []
    try:
        for _ in range(args.repeat):  # a fresh ledger each time: the table is new to it
            guards.install(FilterSession.start(Policy(), None, persistent=False))
            start = time.perf_counter()
            table = plain()
            firsts.append(time.perf_counter() - start)
            again = timed(plain, args.repeat)  # the same table again: the ledger's answer
            guards.uninstall()
    finally:
        guards.uninstall()
    first = statistics.median(firsts)
    print(f"crosstab with margins, institution x year x ethnicity, {args.rows:,} records, median of {args.repeat}")
    print(f"{'variant':<40}{'seconds':>10}{'ratio':>8}")
    print(f"{'plain pandas (baseline)':<40}{baseline:>10.3f}{1:>8.2f}")
    print(f"{'Enclave filter, first display':<40}{first:>10.3f}{first / baseline:>8.2f}")
    print(f"{'Enclave filter, shown again':<40}{again:>10.3f}{again / baseline:>8.2f}")
    print(f"cells suppressed: {int(table.isna().sum().sum())} of {table.size}")


if __name__ == "__main__":
    main()
