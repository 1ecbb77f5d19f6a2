"""Notices when the output filter has been changed, and then lets nothing more out.

The filter lives in the same process as the researcher's code, so it cannot stop itself
being changed; it can notice. Before every output and after every cell it checks that every
guard is still in place (``output_filters.guards.registry``), that ``sys.stdout``/``sys.stderr``,
IPython's display machinery and the kernel's ``session.send`` are the ones it set up, and it
watches for direct calls to ``publish_display_data``, ``os.write`` to the standard streams and
``%unload_ext``. Once tampered, the kernel shows only a notice until it is restarted, and the
attempt is recorded (``kernels.events``).
"""

from __future__ import annotations

import os
import sys
from functools import wraps
from typing import Any

import IPython.core.display_functions as display_functions

from kernels import events
from output_filters.guards import registry
from output_filters.guards.callers import from_user_code


class Watch:
    def __init__(self, shell: Any):
        self.reason: str | None = None
        self.shell = shell
        kernel = getattr(shell, "kernel", None)
        self.expected = {
            "sys.stdout": lambda: sys.stdout,
            "sys.stderr": lambda: sys.stderr,
            "the display publisher": lambda: shell.display_pub,
            "the display hook": lambda: shell.displayhook,
            "the display formatter": lambda: shell.display_formatter,
        }
        if kernel is not None:
            self.expected["the kernel session's send"] = lambda: kernel.session.send
        self.snapshot = {}

    def start(self) -> None:
        """Take the reference state (after every guard and the gate are installed)."""
        self.snapshot = {name: get() for name, get in self.expected.items()}
        self._watch_direct_calls()

    def flag(self, what: str) -> None:
        if self.reason is None:
            self.reason = (
                f"the output filter was tampered with ({what}); this kernel shows nothing more until it "
                "is restarted. The attempt has been recorded."
            )
            events.record("tamper", what=what)

    def check(self) -> None:
        moved = registry.changed()
        moved += [
            name for name, get in self.expected.items() if name in self.snapshot and get() is not self.snapshot[name]
        ]
        if moved:
            self.flag(", ".join(moved) + " replaced")

    def refusal(self) -> str | None:
        """The reason every output is refused, or None while the filter is intact."""
        if self.reason is None:
            self.check()
        return self.reason

    def _watch_direct_calls(self) -> None:
        publish = display_functions.publish_display_data

        @wraps(publish)
        def publish_display_data(*args, **kwargs):
            if from_user_code():
                self.flag("publish_display_data called directly")
            return publish(*args, **kwargs)

        for module_name in ("IPython.core.display_functions", "IPython.display", "IPython.core.display"):
            module = sys.modules.get(module_name)
            if module is not None and getattr(module, "publish_display_data", None) is publish:
                registry.replace(module, "publish_display_data", publish_display_data)

        write = os.write

        @wraps(write)
        def guarded_write(fd, data):
            if fd in (1, 2) and from_user_code():
                self.flag("os.write to the kernel's standard streams")
            return write(fd, data)

        registry.replace(os, "write", guarded_write)
