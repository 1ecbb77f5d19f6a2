"""Start user servers by forking a process that has already imported Jupyter (a "zygote").

A cold JupyterLab server spends over a second of CPU importing Jupyter Server, JupyterLab and
JupyterHub's single-user code before it serves anything; ten users logging in at once queue
for the cores on those imports. The hub starts this process once (``python -m hub.forkserver
FD``), it imports those libraries and nothing else, and then, for each server, forks: the
child drops to the user's account exactly as the spawner's ``preexec_fn`` would (groups, gid,
uid; never root when an account was named), takes the spawner's environment, working
directory and argv, and runs the single-user script as if it had been executed.

The zygote reads no secret and holds none: it is started with an environment of its own (the
path, the locale and the user-server ``PYTHONPATH``), speaks only over a socket pair whose
other end only the hub holds, and reaps the servers it forks. A child whose environment,
directory or identity cannot be set exits before running anything.

Wire format: one JSON object per line each way. Request ``{"argv": [...], "env": {...},
"cwd": "...", "uid": int|null, "gid": int|null, "groups": [...]}``; answer ``{"pid": N}`` or
``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import importlib
import json
import os
import pkgutil
import runpy
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from setproctitle import getproctitle, setproctitle

# What the zygote imports before forking: libraries (and our kernel modules) none of which
# reads the environment or any file at import. ``jupyterhub.singleuser`` itself is imported
# again in each child, since it picks its application from the environment at import.
SERVER_PRELOAD = (
    "jupyter_server.serverapp",
    "jupyterlab.labapp",
    "jupyterhub.singleuser.mixins",
    "jupyterhub.singleuser.extension",
    "nbformat",
)
KERNEL_PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "pandas",
    "pandas.io.formats.style",
    "psutil",
    "sqlite3",
    "pdb",
    "output_filters.kernel.extension",
    "output_filters.guards",
)
# Environment variables the zygote itself runs with (never the hub's secrets). A forked
# process's /proc/PID/environ is the zygote's: ENCLAVE_VAR there tells which deployment's it is.
KEPT = ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "ENCLAVE_VAR")
# Where a server finds its kernel zygote (a socket descriptor only that server holds).
KERNEL_FORKS = "ENCLAVE_KERNEL_FORKS"
EXIT_SETUP_FAILED = 70
KERNEL_ZYGOTE_TITLE = "enclave kernel zygote"
PR_SET_PDEATHSIG = 1


class ForkServerError(RuntimeError):
    """The zygote could not be started or did not answer."""


# --- the zygote (its own process) ---------------------------------------------------------


def serve(fd: int) -> None:
    """Answer spawn requests on socket ``fd`` until the hub closes it."""
    getproctitle()  # setproctitle finds the process's argv area now, before any child clears environ
    for name in (*SERVER_PRELOAD, *KERNEL_PRELOAD):
        importlib.import_module(name)
    guards = importlib.import_module("output_filters.guards")
    for module in pkgutil.iter_modules(guards.__path__, "output_filters.guards."):
        importlib.import_module(module.name)
    _loop(socket.socket(fileno=fd), _server_child)


def _loop(channel: socket.socket, child) -> None:
    """Fork ``child(request, channel)`` for each request line; answer with its pid."""
    signal.signal(signal.SIGCHLD, _reap)
    for line in channel.makefile("rb"):
        try:
            request = json.loads(line)
            pid = os.fork()
        except (ValueError, OSError) as error:
            _answer(channel, {"error": str(error)})
            continue
        if pid == 0:
            child(request, channel)  # never returns
        _answer(channel, {"pid": pid})


def _answer(channel: socket.socket, message: dict) -> None:
    channel.sendall(json.dumps(message).encode() + b"\n")


def _reap(_signum, _frame) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _detach(channel: socket.socket) -> None:
    """A fresh child: default signals, its own session, no descriptor but stdout and stderr."""
    channel.close()
    for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.closerange(3, 65536)


def _server_child(request: dict, channel: socket.socket) -> None:
    """Become the user's server: identity, descriptors, environment, then the script."""
    try:
        _detach(channel)
        uid = request.get("uid")
        if uid is not None:
            os.setgid(request["gid"])
            os.setgroups(request["groups"])
            os.setuid(uid)
            if 0 in (os.getuid(), os.geteuid(), os.getgid(), os.getegid()) and uid != 0:
                os._exit(EXIT_SETUP_FAILED)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        script = request["argv"][0]
        sys.argv = list(request["argv"])
        setproctitle(" ".join([sys.executable, *sys.argv]))  # what ps would show for a new process
        sys.path[0] = os.path.dirname(script)
        for name in ("jupyterhub.singleuser", "jupyterhub.singleuser.app"):
            sys.modules.pop(name, None)
        if request.get("kernels"):
            _start_kernel_zygote()
    except BaseException as error:  # noqa: BLE001 - report and leave before running anything
        print(f"forkserver: could not prepare the server: {error}", file=sys.stderr, flush=True)
        os._exit(EXIT_SETUP_FAILED)
    _run(lambda: runpy.run_path(script, run_name="__main__"))


def _start_kernel_zygote() -> None:
    """Fork, as the user, the process the server's kernels are forked from (pandas, IPython
    and the filter already imported); it exits when the server closes its socket."""
    ours, theirs = socket.socketpair()
    if os.fork() == 0:
        ours.close()
        setproctitle(KERNEL_ZYGOTE_TITLE)
        try:
            _loop(theirs, _kernel_child)
        finally:
            os._exit(0)
    theirs.close()
    os.environ[KERNEL_FORKS] = str(ours.detach())  # the descriptor outlives this socket object


def _kernel_child(request: dict, channel: socket.socket) -> None:
    """Become a kernel: ``python -m MODULE ARGS`` as jupyter_client would have executed it."""
    try:
        parent = os.getppid()
        _detach(channel)
        _die_with(parent)
        argv = request["argv"]
        if len(argv) < 3 or argv[1] != "-m":
            raise ValueError(f"not a 'python -m MODULE' command: {argv}")
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # as jupyter_client sets it (ipykernel, imported by the zygote, read it at import: the
        # kernel's end with its zygote is ``_die_with``'s, not ipykernel's parent poller)
        os.environ["JPY_PARENT_PID"] = str(parent)
        sys.argv = [argv[2], *argv[3:]]
        setproctitle(" ".join(argv))
        sys.path[0] = os.getcwd()  # as ``python -m`` has it
        sys.modules.pop(argv[2], None)  # run as __main__, not as the module imported before
    except BaseException as error:  # noqa: BLE001 - report and leave before running anything
        print(f"forkserver: could not prepare the kernel: {error}", file=sys.stderr, flush=True)
        os._exit(EXIT_SETUP_FAILED)
    _run(lambda: runpy.run_module(argv[2], run_name="__main__", alter_sys=True))


def _die_with(parent: int) -> None:
    """Be killed when the process that forked this one ends (Linux's parent-death signal).

    A kernel's zygote exits when its server does (stopped, culled or killed): the kernels then
    end too, instead of running on with the user's data and no server to reach them. The
    signal is SIGKILL, which the kernel's code cannot catch; it is set after the fork (a fork
    clears it) and this process changes no credentials after it (that would clear it too)."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # it ended before the signal was set
        os._exit(EXIT_SETUP_FAILED)


def _run(main) -> None:
    """Run ``main`` as a process's whole program would, then leave with its exit code."""
    code = 0
    try:
        main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # noqa: BLE001 - the server's own failure, as an executed script would show it
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


# --- the asking side ----------------------------------------------------------------------


class _Asker:
    """One request at a time over a zygote's socket (requests come from several tasks)."""

    def __init__(self) -> None:
        self._channel: socket.socket | None = None
        self._reader = None
        self._lock = threading.Lock()

    def _connect(self) -> None:
        raise ForkServerError("no fork server")

    def _usable(self) -> bool:
        return self._channel is not None

    async def spawn(self, argv: list[str], env: dict[str, str], cwd: str, **extra) -> int:
        """Fork ``argv`` in ``cwd`` with ``env``; the new process's pid."""
        request = {"argv": list(argv), "env": dict(env), "cwd": cwd, **extra}
        return await asyncio.to_thread(self._ask, request)

    def _ask(self, request: dict) -> int:
        try:
            line = json.dumps(request).encode() + b"\n"
        except (TypeError, ValueError) as error:
            raise ForkServerError(f"not a request the fork server can read: {error}") from error
        with self._lock:
            for attempt in (1, 2):
                try:
                    if not self._usable():
                        self._connect()
                    self._channel.sendall(line)
                    line = self._reader.readline()
                    if not line:
                        raise ForkServerError("the fork server closed its socket")
                    answer = json.loads(line)
                except (OSError, ValueError, ForkServerError) as error:
                    self.close()
                    if attempt == 2:
                        raise ForkServerError(str(error)) from error
                    continue
                if "pid" not in answer:
                    raise ForkServerError(answer.get("error", "no pid in the answer"))
                return int(answer["pid"])
        raise ForkServerError("unreachable")

    def _attach(self, channel: socket.socket) -> None:
        self._channel = channel
        channel.settimeout(60)
        self._reader = channel.makefile("rb")

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None


class ForkServer(_Asker):
    """The hub's zygote, started on first use (or by ``warm``) and again if it has died."""

    def __init__(self, pythonpath: str = "") -> None:
        super().__init__()
        self.pythonpath = pythonpath
        self._process: subprocess.Popen | None = None

    def runs(self, script: str) -> bool:
        """Whether ``script`` is a Python script of this interpreter (what a fork can run)."""
        try:
            with open(script, "rb") as handle:
                first = handle.readline().strip()
        except OSError:
            return False
        return first in {f"#!{sys.executable}".encode(), f"#!{Path(sys.executable).resolve()}".encode()}

    def warm(self) -> None:
        """Start the zygote now, so that the first login does not wait for its imports."""
        with self._lock:
            if not self._usable():
                self._connect()

    def _usable(self) -> bool:
        return self._channel is not None and self._process is not None and self._process.poll() is None

    def _connect(self) -> None:
        self.close()
        ours, theirs = socket.socketpair()
        env = {name: os.environ[name] for name in KEPT if name in os.environ}
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "hub.forkserver", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                env=env,
                cwd="/",
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self._attach(ours)

    def close(self) -> None:
        """Stop the zygote (the servers it forked keep running)."""
        super().close()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
            self._process = None


class KernelForks(_Asker):
    """A user server's handle on its kernel zygote (the descriptor in ``ENCLAVE_KERNEL_FORKS``)."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._attach(socket.socket(fileno=fd))

    @classmethod
    def from_environment(cls) -> KernelForks | None:
        value = os.environ.pop(KERNEL_FORKS, "")
        return cls(int(value)) if value.isdigit() else None

    def _connect(self) -> None:
        raise ForkServerError("the kernel zygote has gone")


if __name__ == "__main__":
    serve(int(sys.argv[1]))
