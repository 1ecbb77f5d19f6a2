"""What a suppression pattern must achieve, and the audit that checks it, while solving.

The requirement (Tau-Argus FREQ(threshold, 100·p)): a primary cell of value v must keep an
attacker interval reaching v − max(1, p·v) or lower and v + max(1, p·v) or higher, rounded
up to whole records, where the attacker is the LP of ``output_filters.engine.attack``. Each level is
capped at what the attacker knows before anything is published (a suppressed cell is ≥ 1
when zeros are shown, ≤ the grand total), so a cell of 1 needs no room below: nothing can
hide that it is not 0. A requirement that no pattern meets (a table whose grand total is
itself small) is lowered to what suppressing every non-zero cell gives.

``Problem`` keeps one attacker model for the whole search and, per requirement, a few
*witnesses* — the attacker's extreme tables found before. A witness that moves only cells a
new pattern still suppresses is still a feasible table for the attacker, so the requirement
still holds and its LP is skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from output_filters.engine.attack import Attacker, Extreme
from output_filters.engine.linear_system import LinearSystem

TOLERANCE = 1e-6
WITNESSES = 16  # extreme tables kept per requirement


@dataclass(frozen=True)
class Requirement:
    """The attacker's LP optimum for ``cell`` must reach the target (max ≥ it, or min ≤ it)."""

    cell: int
    maximize: bool


def protection_level(value: float, interval: float) -> int:
    """Room required each way for a primary cell: max(1, p·v), rounded up to whole records."""
    return max(1, math.ceil(interval * value - 1e-9))


class Problem:
    """One system, its true values, the requirements and the attacker, while solving."""

    def __init__(
        self,
        system: LinearSystem,
        threshold: int,
        interval: float,
        show_zeros: bool,
        unpublished: np.ndarray | None = None,
    ) -> None:
        self.system = system
        self.values = system.cell_values
        # ``unpublished`` cells are never shown (cells of tables only implied by the published
        # ones, such as a subset's complement): always unknown, not even known to be non-zero,
        # and protected like every small cell
        self.unpublished = np.zeros(system.n_cells, dtype=bool) if unpublished is None else unpublished.copy()
        self.floor = np.where(self.unpublished, 0.0, 1.0 if show_zeros else 0.0)
        self.upper = system.upper
        self.primary = (self.values > 0) & (self.values < threshold)
        # zeros are shown and never complementary; with show_zeros off a zero cell still
        # never helps (it could only move up, and it costs a cell)
        self.eligible = (self.values > 0) & ~self.unpublished
        # count first; the rest (< 0.5 in all) sends ties to small cells
        scale = 0.5 / (float(self.values[self.eligible].sum()) + 1.0)
        self.cost = np.where(self.eligible, 1.0 + scale * self.values, 0.0)
        requirements, targets = [], []
        for cell in np.flatnonzero(self.primary):
            v = self.values[cell]
            level = protection_level(v, interval)
            if self.upper - v > TOLERANCE:
                requirements.append(Requirement(int(cell), True))
                targets.append(v + min(level, self.upper - v))
            if v - self.floor[cell] > TOLERANCE:
                requirements.append(Requirement(int(cell), False))
                targets.append(v - min(level, v - self.floor[cell]))
        self.requirements = requirements
        self.targets = np.array(targets, dtype=float)
        self.lines = [
            np.array([c for c in (total, *parts) if self.eligible[c]], dtype=np.int64)
            for total, parts in system.equations
        ]
        self.attacker = Attacker(system, self.values, self.floor)
        self.witnesses: dict[int, list[np.ndarray]] = {}
        self.recent: set[int] = set()

    def met(self, index: int, extreme: Extreme) -> bool:
        if self.requirements[index].maximize:
            return extreme.value >= self.targets[index] - TOLERANCE
        return extreme.value <= self.targets[index] + TOLERANCE

    def audit(self, suppressed: np.ndarray, first: bool = False) -> list[tuple[int, Extreme]]:
        """The requirements a pattern fails (only the first if ``first``), with their LP optima.

        Requirements that failed last time are tried first.
        """
        self.attacker.set_pattern(suppressed)
        failed = []
        order = sorted(range(len(self.requirements)), key=lambda i: (i not in self.recent, i))
        for index in order:
            if first and failed:
                break
            pool = self.witnesses.setdefault(index, [])
            if any(suppressed[witness].all() for witness in pool):
                continue
            requirement = self.requirements[index]
            extreme = self.attacker.extreme(requirement.cell, requirement.maximize)
            if self.met(index, extreme):
                moved = np.abs(extreme.cells - self.values) > TOLERANCE * np.maximum(1.0, self.values)
                pool.insert(0, np.flatnonzero(moved))
                del pool[WITNESSES:]
            else:
                failed.append((index, extreme))
        self.recent = {index for index, _ in failed} | (self.recent if first else set())
        return failed

    def cut(self, index: int, extreme: Extreme) -> tuple[np.ndarray, float]:
        """The capacity cut of a failed LP as (w, K): the requirement needs w·y ≥ ``rhs``."""
        w, rhs = self.attacker.capacity_cut(extreme, self.values, 0.0)
        return np.where(self.eligible, w, 0.0), rhs

    def rhs(self, index: int, constant: float) -> float:
        """A cut's right-hand side for the requirement's current target."""
        signed = -self.targets[index] if self.requirements[index].maximize else self.targets[index]
        return constant - signed

    def relax(self, index: int) -> None:
        """Lower a requirement no pattern can meet to what suppressing every cell gives."""
        self.attacker.set_pattern(self.eligible | self.unpublished)
        requirement = self.requirements[index]
        best = self.attacker.extreme(requirement.cell, requirement.maximize).value
        if requirement.maximize:
            self.targets[index] = min(self.targets[index], best)
        else:
            self.targets[index] = max(self.targets[index], best)
        self.witnesses.pop(index, None)

    def primary_alone(self, suppressed: np.ndarray) -> bool:
        """Whether a primary is the only suppressed cell of a line (given away by subtraction)."""
        for line in self.lines:
            hidden = line[suppressed[line]]
            if len(hidden) == 1 and self.primary[hidden[0]]:
                return True
        return False

    def without_alone(self, suppressed: np.ndarray) -> np.ndarray:
        """Publish again every secondary cell alone in a line: it is known exactly anyway."""
        suppressed = suppressed.copy()
        changed = True
        while changed:
            changed = False
            for line in self.lines:
                hidden = line[suppressed[line]]
                if len(hidden) == 1 and not self.primary[hidden[0]]:
                    suppressed[hidden[0]] = False
                    changed = True
        return suppressed
