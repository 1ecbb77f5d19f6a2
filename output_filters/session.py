"""One filter session: the policy, the ledger of tables shown, and the kernel's tamper watch.

Built once, by the secure kernel's extension (``output_filters.kernel.extension``), and handed
to every guard's ``install``; nothing in the filter keeps a policy of its own. ``origin()``
says where the current output is being made (the cell's execution count), for the ledger's
record of which output a later table conflicts with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from output_filters.engine.ledger import Ledger
from output_filters.engine.ledger_store import LedgerStore
from output_filters.policy import Policy


@dataclass
class FilterSession:
    policy: Policy
    ledger: Ledger
    origin: Callable[[], str] = field(default=lambda: "an earlier cell")
    watch: Any = None  # the kernel's tamper watch, once it is set up

    @classmethod
    def start(cls, policy: Policy, shell: Any = None, persistent: bool = True) -> FilterSession:
        """A session for ``shell`` (an IPython shell, or None for plain Python); ``persistent``
        keeps the ledger in the user's ledger directory across kernels."""

        def origin() -> str:
            # the running cell's number (execution_count is already the next one's)
            count = getattr(getattr(shell, "displayhook", None), "prompt_count", None)
            return f"cell [{count}]" if count is not None else "an earlier cell"

        ledger = Ledger(policy, LedgerStore() if persistent else None, origin)
        return cls(policy, ledger, origin)
