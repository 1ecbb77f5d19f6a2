"""Standard reports at scale: one report on a 200,000-student consortium, and a batch of 12.

1. One report (``--template``, default ``course_success``, every year, by race/ethnicity) run
   as ``enclave report run`` does: papermill, the secure kernel, the output filter. Seconds and
   peak memory (resident, the runner and its kernel together, sampled every 0.1 s), against the
   baseline of the same metric's tables computed in plain pandas in this process (no kernel,
   no filter).
2. A batch of 12 reports: ``college_going`` for the consortium and its 6 districts, and
   ``persistence`` for the consortium and its 4 colleges (the demo has 13 members, 3 of them
   universities, which no template reports on), as one ``enclave report batch college_going
   persistence`` (one queue), with ``--jobs 2`` against the serial baseline (``--jobs 1``) on
   this machine, alternately ``--repeat`` times (2 by default), the fastest run of each compared
   (other work on the machine only ever adds time). Target: jobs 2 ÷ serial <= 0.65. Beside the
   wall-clock seconds, the sum of the reports' own run times (papermill's, kernel start to last
   cell) shows what two at a time cost each report.

Prints two tables; nothing is asserted.

    .venv/bin/python benchmarks/reports.py [--students 200000] [--seed 3] [--skip-batch] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def demo(students: int, seed: int) -> Path:
    """A demo consortium built once per size and seed (kept under the system's temp directory)."""
    var = Path(tempfile.gettempdir()) / f"enclave-bench-demo-{students}-{seed}"
    if not (var / "warehouse.db").exists():
        env = dict(os.environ, ENCLAVE_VAR=str(var), ENCLAVE_ISOLATION="off")
        command = [sys.executable, "-m", "hub.cli", "demo", "build", "--students", str(students), "--seed", str(seed)]
        print(f"building the demo consortium ({students:,} students) in {var} ...", flush=True)
        subprocess.run(command, check=True, env=env, capture_output=True)
    return var


class Peak:
    """The largest resident memory of a process and its descendants, sampled in a thread."""

    def __init__(self, pid: int):
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            self._stop.wait(0.1)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def enclave(var: Path, *args: str) -> tuple[float, int]:
    """Run ``enclave ARGS`` against ``var``: (seconds, peak resident bytes of it and its kernels)."""
    env = dict(os.environ, ENCLAVE_VAR=str(var), ENCLAVE_ISOLATION="off")
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with Peak(process.pid) as peak:
        out, err = process.communicate()
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"enclave {' '.join(args)} failed:\n{out[-2000:]}\n{err[-2000:]}")
    return seconds, peak.peak


def plain_pandas(var: Path, name: str) -> tuple[float, int]:
    """The baseline: the metric's tables in plain pandas in a fresh process."""
    code = (
        "import resource, time\n"
        "start = time.perf_counter()\n"
        "from templates.metrics import METRICS, answerable_years\n"
        "from templates.tables import compute\n"
        "from warehouse.workspace import Workspace\n"
        "ws = Workspace(None)\n"
        "load = lambda t, c: ws.load(t, c)\n"
        f"m = METRICS[{name!r}]\n"
        "years = answerable_years(m, load)\n"
        "compute(m, m.build(load, years), 'ALL', ['ethnicity'], years)\n"
        "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)\n"
    )
    env = dict(os.environ, ENCLAVE_VAR=str(var), PYTHONPATH=str(HERE.parent))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    seconds, peak = result.stdout.split()
    return float(seconds), int(peak)


def members(var: Path) -> dict[str, list[str]]:
    import json

    manifest = json.loads((var / "demo" / "manifest.json").read_text())
    found: dict[str, list[str]] = {}
    for m in manifest["members"]:
        found.setdefault(m["segment"], []).append(m["code"])
    return found


def batch(var: Path, out: Path, jobs: int) -> tuple[float, float]:
    """(wall-clock seconds, the sum of the reports' own run times) of the batch of 12."""
    import json

    codes = members(var)
    institutions = ",".join(["ALL", *codes["k12"], *codes["cc"]])
    folder = out / f"batch-{jobs}"
    seconds, _ = enclave(
        var, "report", "batch", "college_going", "persistence", "--institutions", institutions,
        "--jobs", str(jobs), "--out", str(folder),
    )  # fmt: skip
    runs = [json.loads(p.read_text())["metadata"]["papermill"]["duration"] for p in folder.glob("*/*.ipynb")]
    if len(runs) != 12:
        raise SystemExit(f"the batch wrote {len(runs)} reports, not 12: see {folder}")
    return seconds, sum(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--template", default="course_success")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--repeat", type=int, default=2, help="alternating runs of each batch; the fastest counts")
    args = parser.parse_args()
    var = demo(args.students, args.seed)
    mib = 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="enclave-bench-reports-") as scratch:
        out = Path(scratch)
        base_s, base_m = plain_pandas(var, args.template)
        run_s, run_m = enclave(var, "report", "run", args.template, "--out", str(out / "one"))
        print(f"\nOne report ({args.template}, every year, by race/ethnicity), {args.students:,} students")
        print(f"{'run':<46} {'seconds':>8} {'peak MiB':>9}")
        print(f"{'baseline: the tables in plain pandas':<46} {base_s:>8.1f} {base_m / mib:>9.0f}")
        print(f"{'enclave report run (kernel + filter + HTML)':<46} {run_s:>8.1f} {run_m / mib:>9.0f}")
        if args.skip_batch:
            return
        runs: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
        for _ in range(args.repeat):  # alternating, so that a busy spell weighs on both
            for jobs in (1, 2):
                runs[jobs].append(batch(var, out, jobs))
        print(
            "\nBatch of 12 reports (college_going: ALL + 6 districts; persistence: ALL + 4 colleges), "
            f"{os.cpu_count()} cores, {args.repeat} alternating runs each, the fastest compared"
        )
        (serial, serial_runs), (parallel, parallel_runs) = min(runs[1]), min(runs[2])
        every = {jobs: ", ".join(f"{s:.1f}" for s, _ in found) for jobs, found in runs.items()}
        print(f"{'run':<30} {'seconds':>8} {'÷ serial':>9} {'reports, own s':>16}   every run, s")
        print(f"{'baseline: --jobs 1':<30} {serial:>8.1f} {1:>9.2f} {serial_runs:>16.1f}   {every[1]}")
        print(
            f"{'--jobs 2':<30} {parallel:>8.1f} {parallel / serial:>9.2f} {parallel_runs:>16.1f}   {every[2]}"
            "   (target <= 0.65)"
        )


if __name__ == "__main__":
    main()
