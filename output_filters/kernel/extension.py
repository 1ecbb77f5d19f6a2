"""The IPython extension the secure kernel loads before any user code runs.

It reads the policy once and builds the one ``FilterSession`` (the policy, the user's ledger of
tables shown), installs every guard with it, puts the gate on the kernel's session (with the
seal key the user server gave this kernel, if any) and the tamper watch around it.
"""

from __future__ import annotations

import os
import types

from kernels import events
from output_filters import guards
from output_filters.exceptions import DisclosureError
from output_filters.guards.callers import LIBRARY_PREFIXES
from output_filters.kernel.gate import KEY_VARIABLE, Gate
from output_filters.kernel.tamper import Watch
from output_filters.policy import load_policy
from output_filters.session import FilterSession

_session: FilterSession | None = None


def load_ipython_extension(ipython) -> None:
    global _session
    _session = FilterSession.start(load_policy(), ipython)
    guards.install(_session)
    watch = Watch(ipython)
    _session.watch = watch
    kernel = getattr(ipython, "kernel", None)
    if kernel is not None:
        key = os.environ.pop(KEY_VARIABLE, None)
        Gate(kernel.session, bytes.fromhex(key) if key else None, watch.refusal)
    watch.start()
    ipython.events.register("post_run_cell", lambda *_: watch.check())
    ipython.set_custom_exc((DisclosureError,), _refusal)


def _refusal(shell, etype, value, tb, tb_offset=None):
    """A refusal shows the researcher's own lines and the reason, not the filter's insides."""
    events.record("output.refused", error=etype.__name__, reason=str(value)[:300])
    kept = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(LIBRARY_PREFIXES):
            kept.append((tb.tb_frame, tb.tb_lasti, tb.tb_lineno))
        tb = tb.tb_next
    trimmed = None
    for frame, lasti, lineno in reversed(kept):
        trimmed = types.TracebackType(trimmed, frame, lasti, lineno)
    stb = shell.InteractiveTB.structured_traceback(etype, value, trimmed, tb_offset=tb_offset)
    shell._showtraceback(etype, value, stb)  # IPython leaves showing it to the handler
    return stb


def unload_ipython_extension(ipython) -> None:
    # The guards stay installed: unloading the filter must not let record-level data out.
    if _session is not None and _session.watch is not None:
        _session.watch.flag("the output filter extension was unloaded")
