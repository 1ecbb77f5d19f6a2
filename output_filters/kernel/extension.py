"""The IPython extension the secure kernel loads before any user code runs.

It reads the policy once, installs the guards into pandas (aggregates, propagation,
reductions, conversions, figures, rendering), puts the gate on the kernel's session (with the
seal key the user server gave this kernel, if any) and the tamper watch around it.
"""

from __future__ import annotations

import os

from output_filters.guards import aggregates, conversions, figures, propagation, reductions, rendering
from output_filters.kernel import scalars
from output_filters.kernel.gate import KEY_VARIABLE, Gate
from output_filters.kernel.tamper import Watch
from output_filters.policy import load_policy

_watch: Watch | None = None


def load_ipython_extension(ipython) -> None:
    global _watch
    policy = load_policy()
    aggregates.install(policy)
    propagation.install()
    reductions.install(policy)
    conversions.install()
    figures.install(policy)
    rendering.install(policy)
    ipython.events.register("pre_run_cell", lambda *_: scalars.new_cell())
    _watch = Watch(ipython)
    kernel = getattr(ipython, "kernel", None)
    if kernel is not None:
        key = os.environ.pop(KEY_VARIABLE, None)
        Gate(kernel.session, bytes.fromhex(key) if key else None, _watch.refusal)
    _watch.start()
    ipython.events.register("post_run_cell", lambda *_: (_watch.check(), scalars.end_cell(ipython.user_ns)))


def unload_ipython_extension(ipython) -> None:
    # The guards stay installed: unloading the filter must not let record-level data out.
    if _watch is not None:
        _watch.flag("the output filter extension was unloaded")
