"""One filter session: the policy, the ledger of tables shown, and the kernel's tamper watch.

Built once, by the secure kernel's extension (``output_filters.kernel.extension``), and handed
to every guard's ``install``; nothing in the filter keeps a policy of its own. ``origin()``
says where the current output is being made (the cell's execution count), for the ledger's
record of which output a later table conflicts with. ``decisions`` is the filter's own record
of what it suppressed in this session (``output_filters.summary`` reads it for a report's
closing disclosure summary).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from output_filters.engine.ledger import Ledger
from output_filters.engine.ledger_store import LedgerStore
from output_filters.policy import Policy


@dataclass(frozen=True)
class Decision:
    """What the filter did to one table it published: how many cells, and why some are hidden."""

    kind: str  # "counts" (a count table) or "rates" (shares, rates, means of yes/no values)
    origin: str  # where it was made: "cell [3]"
    cells: int
    primary: int  # hidden for themselves (a small count; a rate of a small group)
    secondary: int  # hidden to protect others (totals, earlier tables); for rates: beside a hidden count
    coded: int = 0  # rates shown as a band ("<5%") instead of a value
    note: str = ""


@dataclass
class FilterSession:
    policy: Policy
    ledger: Ledger
    origin: Callable[[], str] = field(default=lambda: "an earlier cell")
    watch: Any = None  # the kernel's tamper watch, once it is set up
    decisions: list[Decision] = field(default_factory=list)

    def record(self, kind: str, cells: int, primary: int, secondary: int, coded: int = 0, note: str = "") -> None:
        """Remember a published table's suppressions (the closing summary of a report)."""
        self.decisions.append(Decision(kind, self.origin(), cells, primary, secondary, coded, note))

    def record_judged(self, kind: str, values: Any, table: Any, codes: dict, note: str) -> None:
        """Record statistics through the rules: missing before (beside a hidden or empty count)
        count as secondary, hidden by the rules (a small group) as primary."""
        import numpy as np  # here, not at the top: the user server imports this package without pandas
        import pandas as pd

        before = int(np.asarray(pd.isna(values)).sum())
        after = int(np.asarray(pd.isna(table)).sum())
        self.record(kind, int(np.size(np.asarray(values))), after - before, before, len(codes), note)

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
