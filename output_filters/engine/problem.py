"""What a suppression pattern must achieve, and the audit that checks it, while solving.

The requirement (Tau-Argus FREQ(threshold, 100·p)): a primary cell of value v must keep an
attacker interval reaching v − max(1, p·v) or lower and v + max(1, p·v) or higher, rounded
up to whole records, where the attacker is the LP of ``output_filters.engine.attack``. Each level is
capped at what the attacker knows before anything is published (a suppressed cell is ≥ 1
when zeros are shown, ≤ the grand total), so a cell of 1 needs no room below: nothing can
hide that it is not 0. A requirement that no pattern meets (a table whose grand total is
itself small, a primary whose neighbours were all published earlier) is lowered to what
suppressing every cell that may still be suppressed gives, and the lowering is recorded.

Cells whose state an earlier output decided are fixed: ``shown`` cells stay published (and
are never chosen), ``hidden`` cells stay suppressed (like primaries, with no protection of
their own unless they are primaries).

``Problem`` keeps one attacker model for the whole search and a pool of *witnesses*: tables
the attacker could not rule out, found by earlier LPs. A witness that moves only cells a
new pattern still suppresses is still such a table, so every requirement it reaches stays
met and its LP is skipped. The audit first tries the witnesses, then one LP for many
requirements at once (``Attacker.certify``): per region of the table first, with the cells
outside it pinned, so that its tables stay witnesses when a cell elsewhere is published
again (``output_filters.engine.regions``), then over the whole table; it solves the LPs of
single requirements only for what is left: those LPs' duals are the cuts of the
suppression model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from output_filters.engine.attack import Attacker, Extreme
from output_filters.engine.linear_system import LinearSystem
from output_filters.engine.regions import Geometry
from output_filters.engine.witnesses import Witnesses

TOLERANCE = 1e-6
BLOCK = 4  # categories per region of local certification (``Geometry.blocks``)
GROUP = 6  # fewer requirements left than this: their own LPs are cheaper than one for all


@dataclass(frozen=True)
class Requirement:
    """The attacker's LP optimum for ``cell`` must reach the target (max ≥ it, or min ≤ it)."""

    cell: int
    maximize: bool


def protection_level(value: float, interval: float) -> int:
    """Room required each way for a primary cell: max(1, p·v), rounded up to whole records."""
    return max(1, math.ceil(interval * value - 1e-9))


class Problem:
    """One system, its true values, the requirements and the attacker, while solving.

    ``fixed`` cells are suppressed in every pattern (primaries and ``hidden``); ``eligible``
    cells may be chosen as complementary suppressions (non-zero, neither fixed nor ``shown``).
    ``unpublished`` cells are never shown (cells of tables only implied by the published ones,
    such as a subset's complement): hidden by construction, not even known to be non-zero,
    and protected like every small cell.
    """

    def __init__(
        self,
        system: LinearSystem,
        threshold: int,
        interval: float,
        show_zeros: bool,
        *,
        shown: np.ndarray | None = None,
        hidden: np.ndarray | None = None,
        unpublished: np.ndarray | None = None,
    ) -> None:
        self.system = system
        self.values = system.cell_values
        n = system.n_cells

        def mask(cells: np.ndarray | None) -> np.ndarray:
            return np.zeros(n, dtype=bool) if cells is None else np.asarray(cells, dtype=bool).copy()

        self.shown, self.unpublished = mask(shown), mask(unpublished)
        if (self.unpublished & self.shown).any():
            both = np.flatnonzero(self.unpublished & self.shown)[:5].tolist()
            raise ValueError(f"cells {both} are both shown and unpublished")
        self.hidden = mask(hidden) | self.unpublished
        self.floor = np.where(self.unpublished, 0.0, 1.0 if show_zeros else 0.0)
        self.upper = system.upper
        small = (self.values > 0) & (self.values < threshold)
        self.primary = small & ~self.shown
        self.fixed = self.primary | self.hidden
        # zeros are shown and never complementary; with show_zeros off a zero cell still
        # never helps (it could only move up, and it costs a cell)
        self.eligible = (self.values > 0) & ~self.shown & ~self.fixed
        self.suppressible = self.eligible | self.fixed
        # count first; the rest (< 0.25 in all) sends ties to small cells; the master may also
        # take up to 0.25 off for cells it prefers to keep (``Master.solve``)
        scale = 0.25 / (float(self.values[self.eligible].sum()) + 1.0)
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
        self.original = self.targets.copy()
        self.cells = np.array([r.cell for r in requirements], dtype=np.int64)
        self.sign = np.array([1.0 if r.maximize else -1.0 for r in requirements])
        # published small cells cannot be protected: the caller learns so from ``relaxed``
        self.given: list[tuple[int, bool, float, float]] = []
        for cell in np.flatnonzero(small & self.shown):
            v, level = float(self.values[cell]), protection_level(self.values[cell], interval)
            self.given += [(int(cell), True, v + min(level, self.upper - v), v)]
            if v - self.floor[cell] > TOLERANCE:
                self.given += [(int(cell), False, v - min(level, v - self.floor[cell]), v)]
        self.lines = [
            np.array([c for c in (total, *parts) if self.suppressible[c]], dtype=np.int64)
            for total, parts in system.equations
        ]
        # a suppressed cell that is truly 0 (hidden by an earlier output) can be 0 for the attacker
        floors = np.where(self.values > 0, self.floor, 0.0)
        self.attacker = Attacker(system, self.values, floors)
        # one LP model for every pattern of the search, changed by bounds only: it keeps its
        # basis from one LP to the next (a model rebuilt for a new pattern starts cold)
        self.attacker.set_pattern(self.suppressible)
        self.witnesses = Witnesses(n, len(requirements))
        # regions certified on their own first (``output_filters.engine.regions``): witnesses
        # that a change elsewhere in the table keeps
        geometry = Geometry.of(system)
        blocks = [] if geometry is None else geometry.blocks(BLOCK)
        self.regions = blocks if len(blocks) > 1 else []
        self.recent: list[int] = []  # requirements that failed last, tried first next time
        self.version = 0  # counts relaxations: cuts' right-hand sides change with them

    @property
    def relaxed(self) -> tuple[tuple[int, bool, float, float], ...]:
        """(cell, maximize, original target, relaxed target) of every requirement not met in full."""
        lowered = [
            (r.cell, r.maximize, float(o), float(t))
            for r, o, t in zip(self.requirements, self.original, self.targets, strict=True)
            if abs(o - t) > TOLERANCE
        ]
        return tuple(sorted(lowered + self.given))

    def reached(self, table: np.ndarray) -> np.ndarray:
        """The requirements that one table the attacker cannot rule out meets."""
        return self.sign * table[self.cells] >= self.sign * self.targets - TOLERANCE

    def audit(self, suppressed: np.ndarray, first: bool = False) -> list[tuple[int, Extreme]]:
        """The requirements a pattern fails (only the first if ``first``), with their LP optima.

        Order is fixed (requirements that failed last time, then by index), so the same
        pattern in the same search state gives the same answer.
        """
        self.attacker.set_pattern(suppressed)
        open_ = ~self.witnesses.met(suppressed)
        failed: list[tuple[int, Extreme]] = []
        for index in [i for i in self.recent if open_[i]]:
            open_[index] = False
            if self._check(index, open_, failed) and first:
                break
        if not (first and failed):
            self._certify_groups(open_)
            for index in np.flatnonzero(open_):
                if not open_[index]:  # met on the way by another LP's table
                    continue
                open_[index] = False
                if self._check(int(index), open_, failed) and first:
                    break
        self.recent = [index for index, _ in failed]
        return failed

    def _check(self, index: int, open_: np.ndarray, failed: list) -> bool:
        """Solve one requirement's LP; its table may meet others too. True if it failed."""
        requirement = self.requirements[index]
        extreme = self.attacker.extreme(requirement.cell, requirement.maximize)
        if not np.isfinite(extreme.value):  # unbounded above: met, but there is no table to keep
            return False
        reached = self.reached(extreme.cells)
        self.witnesses.add(self.moved(extreme.cells), reached)
        open_ &= ~reached
        if reached[index]:
            return False
        failed.append((index, extreme))
        return True

    def _certify_groups(self, open_: np.ndarray) -> None:
        """One LP per region for its open requirements of a direction (every cell outside the
        region pinned at its true value, so the tables move the region only), then one LP for
        all that are left, again while it meets a fair share."""
        for maximize in (True, False):
            for region, members in self.regions:
                group = np.flatnonzero(open_ & ((self.sign > 0) == maximize) & members[self.cells])
                if not len(group):
                    continue
                table = self.attacker.certify(self.cells[group], self.targets[group], maximize, pinned=~region)
                reached = self.reached(table)
                self.witnesses.add(self.moved(table), reached)
                open_ &= ~reached
            while True:
                group = np.flatnonzero(open_ & ((self.sign > 0) == maximize))
                if len(group) < GROUP:
                    break
                table = self.attacker.certify(self.cells[group], self.targets[group], maximize)
                reached = self.reached(table)
                self.witnesses.add(self.moved(table), reached)
                newly = int((open_ & reached).sum())
                open_ &= ~reached
                if newly * 4 < len(group):  # the rest are in each other's way: one by one
                    break

    def moved(self, table: np.ndarray) -> np.ndarray:
        """The cells a table moves away from their true values."""
        return np.flatnonzero(np.abs(table - self.values) > TOLERANCE * np.maximum(1.0, self.values))

    def cut(self, index: int, extreme: Extreme) -> tuple[np.ndarray, float]:
        """The capacity cut of a failed LP as (w, K): the requirement needs w·y ≥ ``rhs``."""
        w, rhs = self.attacker.capacity_cut(extreme, self.values, 0.0)
        return np.where(self.suppressible, w, 0.0), rhs

    def rhs(self, index: int, constant: float) -> float:
        """A cut's right-hand side for the requirement's current target."""
        signed = -self.targets[index] if self.requirements[index].maximize else self.targets[index]
        return constant - signed

    def everything(self) -> np.ndarray:
        """The pattern that suppresses every cell that may be suppressed."""
        return self.suppressible.copy()

    def relax(self, index: int) -> None:
        """Lower a requirement no pattern can meet to what suppressing every cell gives."""
        self.attacker.set_pattern(self.everything())
        requirement = self.requirements[index]
        best = self.attacker.extreme(requirement.cell, requirement.maximize).value
        if requirement.maximize:
            self.targets[index] = min(self.targets[index], best)
        else:
            self.targets[index] = max(self.targets[index], best)
        self.version += 1

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
                if len(hidden) == 1 and not self.fixed[hidden[0]]:
                    suppressed[hidden[0]] = False
                    changed = True
        return suppressed
