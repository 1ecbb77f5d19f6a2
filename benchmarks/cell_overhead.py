"""Per-cell cost of the output filter on cells that show nothing tabular.

Runs the same short cells in a plain IPython kernel (the baseline, kernelspec ``python3`` of
the same environment) and in the secure ``enclave`` kernel, each over the Jupyter protocol,
and prints the median round trip per cell and the difference. The filter's per-cell work is
the tamper check and the small-length ledger before and after each cell, and the gate's check
and seal of each output. Nothing is asserted; the README quotes the table.

    .venv/bin/python benchmarks/cell_overhead.py [--cells 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from jupyter_client.manager import KernelManager

CELLS = ["x = 1", "print('hello')", "y = [i * i for i in range(100)]", "1 + 1"]


def measure(kernel: str, cells: int, env: dict[str, str]) -> list[float]:
    manager = KernelManager(kernel_name=kernel)
    manager.start_kernel(env=env, cwd=tempfile.mkdtemp())
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    try:
        client.execute_interactive("import pandas as pd", timeout=60)
        for code in CELLS:  # warm up
            client.execute_interactive(code, timeout=60, output_hook=lambda _m: None)
        times = []
        for number in range(cells):
            code = CELLS[number % len(CELLS)]
            start = time.perf_counter()
            client.execute_interactive(code, timeout=60, output_hook=lambda _m: None)
            times.append(time.perf_counter() - start)
        return times
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=300)
    args = parser.parse_args()
    env = dict(os.environ, ENCLAVE_OUTPUT_KEY="00" * 32)  # seal as under the user server
    plain = measure("python3", args.cells, env)
    secure = measure("enclave", args.cells, env)
    base, filtered = statistics.median(plain), statistics.median(secure)
    print(f"round trip per cell, {args.cells} cells of {len(CELLS)} kinds, median")
    print(f"{'kernel':<32}{'ms':>8}")
    print(f"{'python3 (baseline)':<32}{base * 1000:>8.2f}")
    print(f"{'enclave (output filter)':<32}{filtered * 1000:>8.2f}")
    print(f"{'overhead':<32}{(filtered - base) * 1000:>8.2f}")


if __name__ == "__main__":
    main()
