"""Complete a linked table's suppression pattern, with some cells' states already decided.

``decide(system, policy, shown, hidden, unpublished)`` is the ledger's view of the engine's
one search (``output_filters.engine.cell_suppression.suppress_system``): ``shown`` cells stay
published, ``hidden`` cells (and every primary) stay suppressed, ``unpublished`` cells (of the
tables the shown ones imply) are never shown and their small ones are protected; the fewest
further cells are chosen within the policy's counted work budget, so the same ledger gives
the same pattern on any machine load. A requirement that not even suppressing every free cell
meets is lowered to what that gives; the caller decides whether that is the new table's fault
(``Relaxed``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from output_filters.engine.cell_suppression import suppress_system
from output_filters.engine.linear_system import LinearSystem
from output_filters.policy import Policy


@dataclass(frozen=True)
class Relaxed:
    """A requirement no pattern meets: the attacker's bound reaches ``achieved``, not ``target``."""

    cell: int
    maximize: bool
    target: float
    achieved: float


def decide(
    system: LinearSystem,
    policy: Policy,
    shown: np.ndarray,
    hidden: np.ndarray,
    unpublished: np.ndarray | None = None,
) -> tuple[np.ndarray, list[Relaxed]]:
    """The suppressed cells and the requirements that had to be lowered."""
    pattern = suppress_system(system, policy, shown=shown, hidden=hidden & ~shown, unpublished=unpublished)
    relaxed = [Relaxed(cell, maximize, target, achieved) for cell, maximize, target, achieved in pattern.relaxed]
    return pattern.suppressed, relaxed
