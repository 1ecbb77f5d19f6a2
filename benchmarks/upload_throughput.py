"""Upload throughput: Enclave's upload of community-college course records ÷ the floor.

The floor is what a loader that checks nothing would do: ``pandas.read_csv`` of the file and
``DataFrame.to_sql`` into a table without constraints. Enclave's upload streams the same
file in chunks, validates every value against the adopted element set, replaces the raw
identifiers by keyed-HMAC student keys, and writes one transaction into the warehouse
(indexes and foreign keys included). Each run is a fresh process on a fresh database; peak
memory is that process's peak resident set size (VmHWM).

    .venv/bin/python benchmarks/upload_throughput.py                 # 1,000,000 rows, both databases
    .venv/bin/python benchmarks/upload_throughput.py --rows 100000 --databases sqlite

PostgreSQL is a throwaway server started from Debian's binaries (tests/postgres.py), unless
``--postgres-url`` names a server whose databases may be created and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIRST = ["Ana", "José", "Mei", "Darnell", "Priya", "Luis", "Emily", "Nguyễn", "Fatima", "Jack", "Sofía", "Omar"]
LAST = ["Reyes", "O'Neil", "Chen", "Washington", "Patel", "García", "Smith", "Tran", "Haddad", "Müller", "Kim", "Lee"]


def write_courses(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` course enrollments of rows/8 students, as a college's raw file (identifiers included)."""
    rng = np.random.default_rng(seed)
    students = max(rows // 8, 1)
    person = rng.integers(0, students, rows)
    has_ssid = rng.random(students) < 0.8
    ssid = np.where(has_ssid, (5_000_000_000 + np.arange(students)).astype(str), "")
    first = np.array(FIRST)[rng.integers(0, len(FIRST), students)]
    last = np.char.add(np.array(LAST)[rng.integers(0, len(LAST), students)], (np.arange(students) % 997).astype(str))
    births = pd.to_datetime("2003-01-01") + pd.to_timedelta(rng.integers(0, 1500, students), unit="D")
    birth = births.strftime("%Y-%m-%d").to_numpy()
    subject = np.array(["MATH", "ENGL", "HIST", "BIOL", "CHEM", "PSYC", "STAT"])[rng.integers(0, 7, rows)]
    frame = pd.DataFrame(
        {
            "ssid": ssid[person],
            "local_id": np.char.add("A", (20_000_000 + person).astype(str)),
            "first_name": first[person],
            "last_name": last[person],
            "birth_date": birth[person],
            "term": np.array(["2024FA", "2025WI", "2025SP", "2025SU"])[rng.integers(0, 4, rows)],
            "subject": subject,
            "course_number": np.char.add(rng.integers(1, 300, rows).astype(str), "A"),
            "transfer_level": np.where(rng.random(rows) < 0.7, "Y", "N"),
            "math_english": np.where(subject == "MATH", "M", np.where(subject == "ENGL", "E", "")),
            "units": np.array(["3", "4", "1.5", "5"])[rng.integers(0, 4, rows)],
            "grade": np.array(["A", "B", "C", "D", "F", "P", "NP", "W"])[rng.integers(0, 8, rows)],
        }
    )
    frame.to_csv(path, index=False, lineterminator="\n")


# ---- one measured run, in its own process ----------------------------------------------------


def run_floor(url: str, path: Path) -> tuple[int, float]:
    """(rows, seconds) of read_csv + to_sql."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    started = time.perf_counter()
    frame = pd.read_csv(path)
    frame.to_sql("courses_floor", engine, index=False, if_exists="replace")
    seconds = time.perf_counter() - started
    engine.dispose()
    return len(frame), seconds


def run_enclave(url: str, path: Path) -> tuple[int, float]:
    """(rows, seconds) of the upload alone (not creating the schema or adopting elements)."""
    from warehouse.adoption import adopt_all
    from warehouse.db import connect, create_schema
    from warehouse.institutions import add_institution
    from warehouse.pseudonymize import StudentKeyer
    from warehouse.upload import upload

    engine = connect(url)
    create_schema(engine)
    adopt_all(engine, "benchmark")
    college = add_institution(engine, "Benchmark Community College", "cc")
    started = time.perf_counter()
    result = upload(
        engine,
        institution=college.code,
        year="2024-25",
        table="cc_courses",
        path=path,
        keyer=StudentKeyer(b"benchmark secret"),
        loaded_by="benchmark",
    )
    seconds = time.perf_counter() - started
    engine.dispose()
    return result.rows, seconds


def child(variant: str, url: str, path: Path) -> None:
    rows, seconds = (run_floor if variant == "floor" else run_enclave)(url, path)
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_bytes": peak_rss()}))


def peak_rss() -> int:
    """This process's peak resident set (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---- the driver ------------------------------------------------------------------------------


def measure(variant: str, url: str, path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory(prefix="enclave-bench-var-") as state:
        env["ENCLAVE_VAR"] = state
        done = subprocess.run(
            [sys.executable, __file__, "--child", variant, url, str(path)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"{variant} on {url} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant (the median is shown)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", help="a server to use instead of a throwaway one (postgresql+psycopg://...)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], Path(args.child[2]))
        return

    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    server = None
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as scratch:
        path = Path(scratch) / "cc_courses_2024-25.csv"
        write_courses(path, args.rows)
        print(f"{args.rows:,} course records, {path.stat().st_size / 1e6:.0f} MB CSV; median of {args.repeat}\n")
        if "postgresql" in databases and not args.postgres_url:
            from tests.postgres import PostgresServer

            server = PostgresServer.start()
        try:
            lines = []
            for database in databases:
                results = {}
                for variant in ("floor", "enclave"):
                    runs = []
                    for _ in range(args.repeat):
                        url, drop = _database(database, Path(scratch), server, args.postgres_url)
                        try:
                            runs.append(measure(variant, url, path))
                        finally:
                            drop()
                    seconds = statistics.median(r["seconds"] for r in runs)
                    results[variant] = (args.rows / seconds, seconds, max(r["peak_bytes"] for r in runs))
                floor_speed = results["floor"][0]
                for variant, (speed, seconds, peak) in results.items():
                    lines.append((database, variant, seconds, speed, speed / floor_speed, peak / 2**20))
        finally:
            if server is not None:
                server.stop()
    print("| database | variant | seconds | rows/s | ÷ floor | peak RSS (MB) |")
    print("|---|---|---|---|---|---|")
    for database, variant, seconds, speed, ratio, peak in lines:
        name = "floor: read_csv + to_sql" if variant == "floor" else "enclave upload (validate, pseudonymize)"
        print(f"| {database} | {name} | {seconds:.1f} | {speed:,.0f} | {ratio:.2f} | {peak:,.0f} |")


def _database(database: str, scratch: Path, server, given: str | None):
    if database == "sqlite":
        target = scratch / f"bench-{time.monotonic_ns()}.db"
        return f"sqlite:///{target}", lambda: target.unlink(missing_ok=True)
    if given:
        import psycopg

        name = f"bench_{time.monotonic_ns()}"
        admin = given.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")

        def drop() -> None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE {name} WITH (FORCE)")

        return given.rsplit("/", 1)[0] + f"/{name}", drop
    url = server.create_database(empty=True)
    return url, lambda: server.drop_database(url)


if __name__ == "__main__":
    main()
