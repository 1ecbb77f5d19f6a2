"""The fork server (hub.forkserver): what a forked user server and a forked kernel are.

A forked server must be exactly what the spawner's ``Popen`` with its ``preexec_fn`` would have
made: the account, groups, directory, environment and argv it was given, its own session, no
descriptor of the zygote, none of the zygote's own environment — and it is reaped when it
exits. Its kernel zygote forks kernels as ``python -m MODULE`` would run them.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest

from hub.forkserver import ForkServer, ForkServerError

PROBE = """#!{python}
import ctypes, json, os, sys
try:
    environ = open("/proc/self/environ", "rb").read().decode(errors="replace")
except PermissionError:
    environ = None
out = {{
    "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
    "cwd": os.getcwd(), "argv": sys.argv, "env": dict(os.environ), "sid": os.getsid(0), "pid": os.getpid(),
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "environ": environ, "dumpable": ctypes.CDLL(None).prctl(3, 0, 0, 0, 0),
    "path0": sys.path[0], "cmdline": open("/proc/self/cmdline", "rb").read().decode(),
}}
if os.environ.get("PROBE_KERNEL"):
    import asyncio
    from hub.forkserver import KernelForks
    forks = KernelForks.from_environment()
    kernel_env = {{"KERNEL_ONLY": "yes", **({{"LINGER": "1"}} if os.environ.get("PROBE_LINGER") else {{}})}}
    pid = asyncio.run(forks.spawn([sys.executable, "-m", "probe_kernel", "one", "two"], kernel_env, os.getcwd()))
    out["kernel_pid"] = pid
    out["kernel_forks_left_in_env"] = "ENCLAVE_KERNEL_FORKS" in os.environ
    deadline = __import__("time").monotonic() + 60
    target = os.path.join(os.getcwd(), "kernel.json")
    while not os.path.exists(target) and __import__("time").monotonic() < deadline:
        __import__("time").sleep(0.05)
with open(os.path.join(os.getcwd(), "server.json"), "w") as handle:
    json.dump(out, handle)
if os.environ.get("PROBE_LINGER"):
    __import__("time").sleep(120)
"""

KERNEL = """
import json, os, sys
out = {"uid": os.getuid(), "argv": sys.argv, "env": dict(os.environ), "sid": os.getsid(0), "pid": os.getpid(),
       "ppid": os.getppid(), "path0": sys.path[0], "name": __name__,
       "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd"))}
with open("kernel.json.tmp", "w") as handle:
    json.dump(out, handle)
os.rename("kernel.json.tmp", "kernel.json")
if os.environ.get("LINGER"):
    import signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a kernel whose code will not be stopped politely
    time.sleep(120)
"""


@pytest.fixture
def place():
    """A directory any account can use, with the probe script and the probe kernel module
    (outside pytest's own temporary directory, which is its account's alone)."""
    tmp_path = Path(tempfile.mkdtemp(prefix="enclave-forkserver-", dir="/tmp"))
    tmp_path.chmod(0o777)
    yield from _filled(tmp_path)
    shutil.rmtree(tmp_path, ignore_errors=True)


def _filled(tmp_path: Path):
    script = tmp_path / "probe-server"
    script.write_text(PROBE.format(python=sys.executable))
    script.chmod(0o755)
    (tmp_path / "probe_kernel.py").write_text(KERNEL)
    (tmp_path / "probe_kernel.py").chmod(0o644)
    yield tmp_path


@pytest.fixture
def forks(monkeypatch):
    monkeypatch.setenv("ENCLAVE_FORKSERVER_TEST_SECRET", "hub-only-value")
    server = ForkServer()
    yield server
    server.close()


def identity() -> dict:
    """Whom the probe should become: nobody as root, or the current account otherwise."""
    if os.geteuid() != 0:
        return {"uid": None, "gid": None, "groups": []}
    nobody = pwd.getpwnam("nobody")
    return {"uid": nobody.pw_uid, "gid": nobody.pw_gid, "groups": [nobody.pw_gid]}


def wait_for(path: Path, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                return json.loads(path.read_text())
            except ValueError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written within {timeout} s")


def gone(pid: int, timeout: float = 30) -> bool:
    """The process has exited (a zombie left to an init that does not reap counts as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in {"Z", "X"}:
            return True
        time.sleep(0.05)
    return False


def reaped(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.05)
    return False


def test_a_forked_server_is_what_it_was_asked_to_be_and_nothing_of_the_zygote(place, forks):
    ids = identity()
    env = {"JUPYTERHUB_USER": "someone", "PATH": "/usr/bin:/bin", "HOME": str(place)}
    script = str(place / "probe-server")
    assert forks.runs(script)
    pid = asyncio.run(forks.spawn([script, "--flag", "value"], env, str(place), **ids))
    out = wait_for(place / "server.json")
    assert out["pid"] == pid
    assert out["env"] == env  # exactly the spawner's environment
    # Not even in the process's initial environment block, which is the zygote's:
    assert "hub-only-value" not in Path(f"/proc/{forks._process.pid}/environ").read_text(errors="replace")
    assert out["environ"] is None or "hub-only-value" not in out["environ"]
    assert out["argv"] == [script, "--flag", "value"]
    assert out["cmdline"].startswith(f"{sys.executable} {script} --flag value")  # what ps shows
    assert out["cwd"] == str(place)
    assert out["path0"] == str(place)  # as running the script would have it
    assert out["sid"] == pid  # a session of its own: the hub's signals reach it only when sent
    assert out["fds"][:3] == [0, 1, 2] and len(out["fds"]) == 4  # and the one listing /proc/self/fd
    if ids["uid"] is not None:
        assert (out["uid"], out["euid"], out["gid"]) == (ids["uid"], ids["uid"], ids["gid"])
        assert out["groups"] == sorted(ids["groups"])
        # Not dumpable (it changed identity): the user's kernels cannot read its memory or its
        # environment (the server's hub token) through /proc, as they could a new interpreter's.
        assert out["dumpable"] == 0 and out["environ"] is None
    assert reaped(pid), "the zygote reaps the servers it forked"


@pytest.mark.skipif(os.geteuid() != 0, reason="switching accounts needs root (CI runs as root)")
def test_a_server_that_would_keep_a_root_group_never_runs(place, forks):
    nobody = pwd.getpwnam("nobody")
    pid = asyncio.run(forks.spawn([str(place / "probe-server")], {}, str(place), uid=nobody.pw_uid, gid=0, groups=[0]))
    assert gone(pid)
    assert not (place / "server.json").exists()


def test_a_server_whose_directory_is_missing_never_runs(place, forks):
    pid = asyncio.run(forks.spawn([str(place / "probe-server")], {}, str(place / "missing"), **identity()))
    assert gone(pid)
    assert not (place / "server.json").exists()


def test_the_zygote_is_started_again_when_it_has_died(place, forks):
    forks.warm()
    first = forks._process.pid
    os.kill(first, signal.SIGKILL)
    forks._process.wait(timeout=30)
    pid = asyncio.run(forks.spawn([str(place / "probe-server")], {"A": "1"}, str(place), **identity()))
    assert wait_for(place / "server.json")["pid"] == pid
    assert forks._process.pid != first


def test_only_python_scripts_of_this_interpreter_are_forked(tmp_path):
    other = tmp_path / "tool"
    other.write_text("#!/bin/sh\necho hi\n")
    assert not ForkServer().runs(str(other))
    assert not ForkServer().runs(str(tmp_path / "missing"))


def test_a_bad_request_is_an_error_not_a_hang(forks):
    with pytest.raises(ForkServerError):
        asyncio.run(forks.spawn(["x"], {"bad": object()}, "/"))  # not JSON: refused before sending


def test_the_servers_kernels_are_forked_as_python_dash_m_would_run_them(place, forks):
    ids = identity()
    env = {"PROBE_KERNEL": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    server = asyncio.run(forks.spawn([str(place / "probe-server")], env, str(place), kernels=True, **ids))
    out = wait_for(place / "server.json")
    kernel = wait_for(place / "kernel.json")
    assert out["pid"] == server and not out["kernel_forks_left_in_env"]
    assert kernel["pid"] == out["kernel_pid"] and kernel["name"] == "__main__"
    assert kernel["argv"][1:] == ["one", "two"] and kernel["argv"][0].endswith("probe_kernel.py")
    assert kernel["path0"] == str(place)
    assert kernel["sid"] == kernel["pid"]
    assert kernel["env"] == {"KERNEL_ONLY": "yes", "JPY_PARENT_PID": str(kernel["ppid"])}
    assert kernel["fds"][:3] == [0, 1, 2] and len(kernel["fds"]) == 4
    if ids["uid"] is not None:
        assert kernel["uid"] == ids["uid"]
    assert gone(server) and gone(kernel["ppid"]), "the kernel zygote leaves with its server"


def test_a_servers_kernels_end_when_the_server_is_killed(place, forks):
    """A server killed outright (no time to shut its kernels down) takes its kernels with it:
    the kernel zygote leaves with its server, and its kernels with the zygote."""
    env = {"PROBE_KERNEL": "1", "PROBE_LINGER": "1", "PATH": "/usr/bin:/bin"}
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    server = asyncio.run(forks.spawn([str(place / "probe-server")], env, str(place), kernels=True, **identity()))
    out = wait_for(place / "server.json")
    kernel = wait_for(place / "kernel.json")
    assert out["pid"] == server and kernel["pid"] == out["kernel_pid"]
    assert not gone(kernel["pid"], timeout=1), "the kernel runs while its server does"
    os.kill(server, signal.SIGKILL)
    assert gone(kernel["ppid"]), "the kernel zygote leaves with its server"
    assert gone(kernel["pid"]), "the kernel leaves with its zygote"
