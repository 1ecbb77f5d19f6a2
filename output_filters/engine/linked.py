"""Complete a linked table's suppression pattern, with some cells' states already decided.

``decide(system, policy, shown, hidden)``: ``shown`` cells stay published, ``hidden`` cells
(and every primary) stay suppressed; further cells among the rest are suppressed until the
attacker's LPs (``output_filters.engine.problem``) pass, chosen by the capacity cuts of the
failed LPs (the most room per cost first, ties to small cells, then to the lowest index: a
fixed order, so the same ledger gives the same pattern). Cells added that the LPs turn out
not to need are published again, largest first. A requirement that not even suppressing
every free cell meets is lowered to what that gives; the caller decides whether that is the
new table's fault (``Relaxed``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from output_filters.engine.linear_system import LinearSystem
from output_filters.engine.problem import TOLERANCE, Problem
from output_filters.policy import Policy

MAX_ROUNDS = 400  # repair rounds: a deterministic bound, never reached on tables of ordinary size


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
    """The suppressed cells and the requirements that had to be lowered (``unpublished``
    cells are never shown: ``output_filters.engine.problem``)."""
    problem = Problem(system, policy.threshold, policy.protection_interval, policy.show_zeros, unpublished)
    problem.eligible &= ~shown
    base = (hidden | problem.primary | problem.unpublished) & ~shown
    suppressed = base.copy()
    relaxed: list[Relaxed] = []
    for _round in range(MAX_ROUNDS):
        failed = problem.audit(suppressed)
        if not failed:
            break
        progress = False
        for index, extreme in failed:
            w, constant = problem.cut(index, extreme)
            rhs = problem.rhs(index, constant)
            reachable = float(w[problem.eligible].sum())
            if reachable < rhs - TOLERANCE:  # not even every free cell meets it
                requirement = problem.requirements[index]
                target = float(problem.targets[index])
                problem.relax(index)
                relaxed.append(Relaxed(requirement.cell, requirement.maximize, target, float(problem.targets[index])))
                progress = True
                continue
            need = rhs - float(w @ suppressed)
            while need > TOLERANCE:
                candidates = np.flatnonzero(~suppressed & problem.eligible & (w > TOLERANCE))
                if not len(candidates):
                    break
                gain = np.minimum(w[candidates], need) / problem.cost[candidates]
                pick = candidates[np.lexsort((candidates, problem.values[candidates], -gain))[0]]
                suppressed[pick] = True
                need -= w[pick]
                progress = True
        if not progress:  # the cuts point nowhere: suppress every free cell
            suppressed |= problem.eligible
    added = np.flatnonzero(suppressed & ~base)
    for cell in added[np.lexsort((added, -problem.values[added]))]:
        trial = suppressed.copy()
        trial[cell] = False
        if not problem.primary_alone(trial) and not problem.audit(trial, first=True):
            suppressed = trial
    return suppressed, relaxed
