"""Kernels forked from the server's kernel zygote (hub.forkserver), not new interpreters.

The server's zygote, forked as the user before the server ran, has pandas, IPython and the
output filter imported already: a kernel starts in a fraction of the time and CPU. The kernel
is exactly what ``python -m kernels.launcher -f CONNECTION`` would be (same environment, same
directory, same account and groups as the server), in a session of its own so interrupts and
kills reach it and its children. Without a zygote (a server not started by the hub's fork
server) kernels start as LocalProvisioner starts them.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jupyter_client.provisioning import LocalProvisioner

from hub.forkserver import ForkServerError, KernelForks

_FORKS: list[KernelForks | None] = []


def _kernel_forks() -> KernelForks | None:
    if not _FORKS:
        _FORKS.append(KernelForks.from_environment())
    return _FORKS[0]


class ForkedProcess:
    """What jupyter_client needs of a ``Popen``, for a process that is not our child."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        try:
            self._handle: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self._handle = None

    def poll(self) -> int | None:
        if self.returncode is None:
            if self._handle is not None:
                ready, _, _ = select.select([self._handle], [], [], 0)
                if ready:
                    self._gone()
            else:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    self._gone()
        return self.returncode

    def _gone(self) -> None:
        self.returncode = 0  # its parent, the zygote, collected the status
        if self._handle is not None:
            os.close(self._handle)
            self._handle = None

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkedKernelProvisioner(LocalProvisioner):
    """LocalProvisioner, but the kernel process comes from the kernel zygote when there is one."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any):
        forks = _kernel_forks()
        if forks is None or len(cmd) < 3 or cmd[0] != sys.executable or cmd[1] != "-m":
            return await super().launch_kernel(cmd, **kwargs)
        env = dict(kwargs.get("env") or os.environ)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        try:
            pid = await forks.spawn(cmd, env, cwd)
        except ForkServerError as error:
            self.log.warning("Kernel zygote unavailable (%s); the kernel starts as a new process", error)
            return await super().launch_kernel(cmd, **kwargs)
        self.process = ForkedProcess(pid)
        self.pid = pid
        self.pgid = pid  # the child starts its own session
        self.cwd = Path(cwd)
        return self.connection_info
