"""Separate system accounts: a user's kernel reads its own uses' extracts and nothing else.

The hub's account (root) builds a demo consortium with isolation on; then processes running
as the users' system accounts try to read the warehouse, the secrets and the extracts.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hub.provisioning import system_user, unreachable, use_group

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="creating system accounts needs root (CI runs as root)"),
    pytest.mark.skipif(
        bool(os.geteuid() == 0 and unreachable()),
        reason="this machine's Python or checkout sits in directories other accounts cannot pass "
        "(.ci/run opens them: chmod o+x)",
    ),
]

READ = """
import json, os, sys
from pathlib import Path
var = Path(os.environ["ENCLAVE_VAR"])
result = {"uid": os.getuid()}
for name in ("warehouse.db", "accounts.db", "audit.db", "secrets/student-key", "demo/credentials.txt"):
    try:
        (var / name).read_bytes()
        result[name] = "read"
    except PermissionError:
        result[name] = "refused"
from kernels import data
result["tables"] = data.tables()
result["uses"] = sorted(data.uses())
for use in sys.argv[1:]:
    try:
        data.load(use + "/cc_courses")
        result[use] = "read"
    except Exception as error:
        result[use] = type(error).__name__
    try:
        (var / "uses" / use / "cc_courses.parquet").read_bytes()
        result[use + " file"] = "read"
    except PermissionError:
        result[use + " file"] = "refused"
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def isolated(tmp_path_factory):
    """A demo consortium built by root with isolation on, in a directory others can pass."""
    top = Path(tempfile.mkdtemp(prefix="enclave-isolation-", dir="/tmp"))
    top.chmod(0o711)
    state = top / "var"
    env = dict(os.environ, ENCLAVE_VAR=str(state), ENCLAVE_ISOLATION="users")
    enclave = [sys.executable, "-m", "hub.cli"]
    subprocess.run(
        [*enclave, "demo", "build", "--students", "300", "--seed", "3"], env=env, check=True, capture_output=True
    )
    manifest = json.loads((state / "demo" / "manifest.json").read_text())
    univ = next(m["code"] for m in manifest["members"] if m["segment"] == "univ")
    subprocess.run(
        [*enclave, "user", "add", "iso-other", "--institution", univ, "--role", "researcher", "--password-stdin"],
        env=env,
        input=b"a long enough password\n",
        check=True,
        capture_output=True,
    )
    yield state, env
    shutil.rmtree(top, ignore_errors=True)


def run_as(account: str, env: dict, *uses: str) -> dict:
    entry = pwd.getpwnam(system_user(account))
    groups = os.getgrouplist(entry.pw_name, entry.pw_gid)

    def become() -> None:
        os.setgid(entry.pw_gid)
        os.setgroups(groups)
        os.setuid(entry.pw_uid)

    done = subprocess.run(
        [sys.executable, "-c", READ, *uses],
        env=dict(env, ENCLAVE_USER=account),
        preexec_fn=become,
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_every_account_has_a_system_account_and_every_use_a_group(isolated):
    state, _env = isolated
    for account in ("demo-researcher", "demo-author", "demo-reviewer", "demo-admin", "iso-other"):
        assert pwd.getpwnam(system_user(account)).pw_shell == "/usr/sbin/nologin"
    version = (state / "uses" / "demo-consortium").resolve()
    info = version.stat()
    group = grp.getgrnam(use_group("demo-consortium"))
    assert info.st_gid == group.gr_gid and stat.S_IMODE(info.st_mode) == 0o750
    assert set(group.gr_mem) == {system_user("demo-researcher"), system_user("demo-author")}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in version.iterdir())


def test_the_state_directory_keeps_private_things_private(isolated):
    state, _env = isolated
    assert stat.S_IMODE(state.stat().st_mode) == 0o711
    for name in ("warehouse.db", "accounts.db", "audit.db"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600
    for name in ("secrets", "demo"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o700


def test_a_researcher_reads_her_uses_and_nothing_else(isolated):
    _state, env = isolated
    seen = run_as("demo-researcher", env, "demo-consortium")
    assert seen["uid"] != 0
    for name in ("warehouse.db", "accounts.db", "audit.db", "secrets/student-key", "demo/credentials.txt"):
        assert seen[name] == "refused", name
    assert "k12_enrollment" in seen["tables"] and "demo-consortium" in seen["uses"]
    assert seen["demo-consortium"] == "read" and seen["demo-consortium file"] == "read"


def test_another_users_uses_stay_closed(isolated):
    _state, env = isolated
    seen = run_as("iso-other", env, "demo-consortium")
    assert seen["warehouse.db"] == "refused"
    assert "demo-consortium" not in seen["uses"]
    assert seen["demo-consortium file"] == "refused"
    assert all(use.startswith("own-") for use in seen["uses"]) and seen["uses"]
    assert "k12_enrollment" not in seen["tables"]  # a university's own data has no K-12 table


def test_enclave_doctor_passes_on_a_demo_with_per_user_accounts(isolated):
    """What `make up` leaves behind (as root): the doctor finds nothing to fail, and warns only that
    no TLS proxy is in front of 127.0.0.1."""
    _state, env = isolated
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "doctor"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No check failed." in done.stdout
    assert "no user's system account can read the secrets" in done.stdout
    warnings = [line for line in done.stdout.splitlines() if line.startswith("WARN")]
    assert len(warnings) == 1 and "TLS" in warnings[0]
