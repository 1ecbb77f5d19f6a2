"""The IPython extension the secure kernel loads before any user code runs.

It reads the policy once and installs the aggregation guards and the rendering checks
into pandas for the life of the kernel.
"""

from __future__ import annotations

from output_filters import aggregates, propagation, rendering
from output_filters.policy import load_policy


def load_ipython_extension(ipython) -> None:
    policy = load_policy()
    aggregates.install(policy)
    propagation.install()
    rendering.install(policy)


def unload_ipython_extension(ipython) -> None:
    # The guards stay installed: unloading the filter must not let record-level data out.
    print("The Enclave output filter stays loaded for the life of this kernel.")
