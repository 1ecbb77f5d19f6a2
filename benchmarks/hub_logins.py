"""Concurrent logins to the locked-down hub: login, spawn, first cell, per step.

Builds a small demo consortium in a temporary directory, starts the real hub and proxy on free
loopback ports (as root: per-user system accounts, as in production), creates the benchmark's
researchers, then measures each user's steps through the public URL, as a browser would:

- login: the hub's login form (argon2id check, lockout bookkeeping, audit event);
- spawn: from the spawn request until JupyterLab is served (the user's server as its own
  account, the OAuth redirect finished);
- kernel: starting the secure kernel until it answers;
- first cell: ``from kernels import data; len(data.tables())`` until its reply and idle.

First one user alone (the baseline, same run), then ``--users`` at once. Loopback only; every
wait has a deadline; nothing is retried. Prints p50 and p95 per step and login → first cell;
the target is p95 <= 10 s for login → first cell with 10 users on a 2-core machine.

    .venv/bin/python benchmarks/hub_logins.py [--users 10] [--hub-log FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.e2e.hub_client import HubClient  # noqa: E402

PASSWORD = "bench-harbor-lantern-42"
STEPS = ("login", "spawn", "kernel", "first cell", "login → first cell")
DEADLINE = 180.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def enclave(env: dict[str, str], *args: str, input: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", *args], env=env, input=input, capture_output=True, text=True, cwd=REPO
    )
    if done.returncode != 0:
        raise SystemExit(f"enclave {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def start_hub(state: Path, log: Path | None) -> tuple[subprocess.Popen, str, dict[str, str]]:
    ports = {name: str(free_port()) for name in ("ENCLAVE_PORT", "ENCLAVE_HUB_PORT", "ENCLAVE_PROXY_API_PORT")}
    env = {k: v for k, v in os.environ.items() if k != "ENCLAVE_ISOLATION"}
    if os.geteuid() != 0:
        env["ENCLAVE_ISOLATION"] = "off"
    env.update(ENCLAVE_VAR=str(state), **ports)
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the hub's whole life
    process = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "serve"],
        env=env,
        stdout=output,
        stderr=output,
        cwd=REPO,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{ports['ENCLAVE_PORT']}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/hub/health", timeout=2).status_code == 200:
                return process, url, env
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit("the hub did not become healthy within 120 s")


def one_user(url: str, name: str) -> dict[str, float]:
    client = HubClient(url)
    times = {}
    start = time.perf_counter()
    response = client.login(name, PASSWORD)
    if response.status_code != 302:
        raise RuntimeError(f"{name}: login answered {response.status_code}")
    times["login"] = time.perf_counter() - start
    mark = time.perf_counter()
    client.open_lab(name, timeout=DEADLINE)
    times["spawn"] = time.perf_counter() - mark
    mark = time.perf_counter()
    started = client.start_kernel(name)
    if started.status_code != 201:
        raise RuntimeError(f"{name}: kernel start answered {started.status_code}")
    kernel = started.json()["id"]
    client.execute(name, kernel, "1", timeout=DEADLINE)  # the kernel answers
    times["kernel"] = time.perf_counter() - mark
    mark = time.perf_counter()
    out = client.execute(name, kernel, "from kernels import data\nlen(data.tables())", timeout=DEADLINE)
    if out.reply is None or out.reply["status"] != "ok":
        raise RuntimeError(f"{name}: first cell failed: {out.text}")
    times["first cell"] = time.perf_counter() - mark
    times["login → first cell"] = time.perf_counter() - start
    client.hub_api("DELETE", f"users/{name}/server")  # leave the machine as it was for the next run
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--hub-log", type=Path, help="append the hub's output (and its servers') to this file")
    args = parser.parse_args()
    top = Path(tempfile.mkdtemp(prefix="enclave-bench-", dir="/tmp"))
    top.chmod(0o711)
    state = top / "var"
    env = dict(os.environ, ENCLAVE_VAR=str(state))
    env.pop("ENCLAVE_ISOLATION", None)
    if os.geteuid() != 0:
        env["ENCLAVE_ISOLATION"] = "off"
    process = None
    try:
        print(f"building a demo consortium of {args.students} students in {state} ...", flush=True)
        enclave(env, "demo", "build", "--students", str(args.students), "--seed", "1")
        code = next(line.split()[0] for line in enclave(env, "institution", "list").splitlines() if "college" in line)
        names = [f"bench-{n:02d}" for n in range(args.users + 1)]
        for name in names:
            enclave(
                env,
                "user",
                "add",
                name,
                "--role",
                "researcher",
                "--institution",
                code,
                "--password-stdin",
                input=PASSWORD,
            )
        process, url, _ = start_hub(state, args.hub_log)
        print(f"hub at {url}; 1 user alone, then {args.users} at once", flush=True)
        alone = one_user(url, names[0])
        with ThreadPoolExecutor(max_workers=args.users) as pool:
            together = list(pool.map(lambda n: one_user(url, n), names[1:]))
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(top, ignore_errors=True)
    print(f"\nseconds per step; {os.cpu_count()} cores; baseline: 1 user alone; then {args.users} users at once")
    print(f"| step | 1 user (baseline) | {args.users} users p50 | {args.users} users p95 |")
    print("|---|---|---|---|")
    for step in STEPS:
        values = [t[step] for t in together]
        print(f"| {step} | {alone[step]:.2f} | {statistics.median(values):.2f} | {percentile(values, 0.95):.2f} |")
    worst = percentile([t["login → first cell"] for t in together], 0.95)
    print(f"\ntarget p95 login → first cell <= 10 s: {'met' if worst <= 10 else 'NOT met'} ({worst:.2f} s)")


if __name__ == "__main__":
    main()
