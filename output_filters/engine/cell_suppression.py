"""Choose the fewest cells to suppress so that every small count keeps its protection interval.

Exact model: Fischetti and Salazar's, as behind Tau-Argus OPT. A binary y per cell
(1 = suppressed; primaries fixed to 1, zeros to 0) and, for each primary and direction, the
capacity constraints w·y ≥ rhs that the attacker LP's duals give (``Attacker.capacity_cut``).
By weak duality every such cut holds for every pattern that meets the requirement; a
pattern whose attacker LPs pass meets it. So the loop — solve the master "min Σ cost·y
subject to the cuts so far" (``output_filters.engine.master``), audit its answer with the
attacker LPs (``output_filters.engine.problem``), add the cuts of the failed LPs — ends with a
safe pattern of minimum cell count (Benders-style row generation; Tau-Argus generates the
same cuts inside one branch-and-cut tree). The cost is the count plus small tie-breaks
(below 0.25 either way), so the count is minimized first.

Rounds after the first are cheaper: the master is restricted to a region (the cells of the
answers so far and of their failures' cuts) and prefers the last answer's cells, so it moves
only where it must; when the region holds nothing better, the whole master is solved again,
to proof, which also raises the lower bound. An answer that fails a few requirements is
repaired (``output_filters.engine.protector``: the cheapest protection of each failure) into
a safe pattern, the best of which is kept; once it reaches the lower bound it is optimal.

The search is a pure function of the system, the policy and the fixed cells. Its work is
counted, never timed (``Budget``: every LP and MILP solve and simplex iteration, and every
branch-and-bound node and limit check of HiGHS' MILPs, each by a fixed weight); every choice
is made in a fixed order (ties broken by cell index); HiGHS runs on one thread with a fixed
seed. When the budget runs out the best audited pattern is returned ("best found"; the last
answer, repaired, if there is none yet); when it runs out before the master answered at all,
the line heuristic, repaired ("fallback"); either is then pruned with a little more work
(``FINAL_PRUNE``). A repair is finished whatever the budget: each
step adds a cell or relaxes a requirement, so it ends. Every answer has passed the attacker
LPs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from output_filters.engine.linear_system import LinearSystem
from output_filters.engine.master import Cuts, Master, line_cuts
from output_filters.engine.problem import TOLERANCE, Problem
from output_filters.engine.protector import Protector
from output_filters.policy import Policy

Relaxation = tuple[int, bool, float, float]  # cell, maximize, original target, relaxed target
# an LP's work in budget units (a unit is 0.02–0.07 ms of one idle core; MILPs: master.py)
WORK_PER_LP, WORK_PER_LP_ITERATION = 6, 2
MILP_SHARE = 3  # one MILP may use at most a third of the budget left
REPAIR_FAILURES = 5  # repair an answer that fails at most this many requirements
REPAIR_RESERVE = 500  # work per failure kept back for the last repair, while there is no pattern
FINAL_PRUNE = 1000  # work past the budget to prune the last repaired answer when nothing better was found


@dataclass(frozen=True)
class Budget:
    """The work one search may do (``Policy.suppression_work``), in counted units: each LP
    solve and simplex iteration, each MILP solve, its simplex iterations, nodes and limit
    checks, by fixed weights (``WORK_PER_*`` here and in ``master``). A unit is 0.02–0.07 ms
    of one idle core (a MILP's share varies most), but nothing is timed: the same search spends the same units on any
    machine, busy or quiet."""

    work: int

    @classmethod
    def of(cls, policy: Policy) -> Budget:
        return cls(policy.suppression_work)


@dataclass(frozen=True)
class Pattern:
    """A suppression pattern over a system's cells and how it was found.

    ``suppressed``: primaries, hidden cells and complementary cells. ``primary``: the small
    cells the pattern protects (small cells that were ``shown`` are not among them).
    ``method``: "none" (no primary cell), "exact" (proven minimum count), "best found" (the
    budget ended the proof; the best audited pattern of the search) or "fallback" (the budget
    ended the search before it found one: line heuristic, repaired). ``relaxed``: (cell,
    maximize, original target, relaxed target) for every requirement that no pattern could
    meet and was lowered to what suppressing every free cell gives (a small cell shown
    earlier has its own value as relaxed target): those primaries are not fully protected.
    ``work``: the budget spent, in the units of ``Budget.work``.
    """

    suppressed: np.ndarray
    primary: np.ndarray
    method: str
    relaxed: tuple[Relaxation, ...] = ()
    attacker_lps: int = 0
    rounds: int = 0
    work: int = 0

    @property
    def optimal(self) -> bool:
        return self.method in ("none", "exact")


def suppress_system(
    system: LinearSystem,
    policy: Policy,
    *,
    shown: np.ndarray | None = None,
    hidden: np.ndarray | None = None,
    unpublished: np.ndarray | None = None,
) -> Pattern:
    """The suppression pattern for a system within the policy's work budget.

    ``shown`` and ``hidden`` are boolean masks over the system's cells whose state an earlier
    output decided: shown cells are never chosen, hidden cells are suppressed in the result
    (they need no protection of their own unless they are primaries). ``unpublished`` cells
    are never shown at all (cells of tables only implied by the published ones): suppressed
    in the result, not even known to be non-zero, and protected like every small cell.
    """
    shown, hidden = _mask(system, shown, "shown"), _mask(system, hidden, "hidden")
    unpublished = _mask(system, unpublished, "unpublished")
    for name, both in (("hidden", shown & hidden), ("unpublished", shown & unpublished)):
        if both.any():
            raise ValueError(f"cells {np.flatnonzero(both)[:5].tolist()} are both shown and {name}")
    problem = Problem(
        system,
        policy.threshold,
        policy.protection_interval,
        policy.show_zeros,
        shown=shown,
        hidden=hidden,
        unpublished=unpublished,
    )
    if not problem.requirements:
        method = "exact" if problem.primary.any() else "none"
        return Pattern(problem.fixed.copy(), problem.primary.copy(), method, problem.relaxed)
    if (problem.fixed & ~problem.primary).any() and not problem.audit(problem.fixed.copy(), first=True):
        # cells decided earlier protect already (a linked table that needs nothing more): no
        # complementary cell is needed, which is optimal
        attacker = problem.attacker
        return Pattern(problem.fixed.copy(), problem.primary.copy(), "exact", problem.relaxed, attacker.solves)
    search = Search(problem, Budget.of(policy))
    suppressed, method = search.run()
    attacker = problem.attacker
    return Pattern(
        suppressed, problem.primary.copy(), method, problem.relaxed, attacker.solves, search.rounds, search.work
    )


def _mask(system: LinearSystem, mask: np.ndarray | None, name: str) -> np.ndarray:
    if mask is None:
        return np.zeros(system.n_cells, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != (system.n_cells,) or mask.dtype != bool:
        raise ValueError(f"{name} must be a boolean mask over the system's {system.n_cells} cells, not {mask.shape}")
    return mask.copy()


class Search:
    """Row generation with repaired upper bounds, within a budget."""

    def __init__(self, problem: Problem, budget: Budget) -> None:
        self.problem = problem
        self.budget = budget
        self.cuts = Cuts(problem)
        for cut in line_cuts(problem):
            self.cuts.add_sparse(*cut)
        self.master = Master(problem, self.cuts)
        self.protector = Protector(problem)
        self.master_work = 0
        self.rounds = 0
        self.best: np.ndarray | None = None
        self.lower = 0  # proven: no safe pattern has fewer complementary cells

    @property
    def work(self) -> int:
        solves = self.problem.attacker.solves + self.protector.solves
        iterations = self.problem.attacker.iterations + self.protector.iterations
        return WORK_PER_LP * solves + WORK_PER_LP_ITERATION * iterations + self.master_work

    def spent(self) -> bool:
        return self.work >= self.budget.work

    def run(self) -> tuple[np.ndarray, str]:
        """The best pattern found and how ("exact", "best found" or "fallback").

        Each round solves the master, audits its answer and adds the cuts of what failed. After
        a failure the next master is restricted to a region: the cells of the answers so far and
        of their failures' cuts (a smaller MILP, and a pattern within a cell or so of its bound
        will do); when the region holds nothing better, the next master is the whole one again,
        solved to proof, which also raises the lower bound.
        """
        region: np.ndarray | None = None
        last: np.ndarray | None = None
        reserve = 0  # work kept back to repair the last answer while there is no safe pattern
        while self.work + reserve < self.budget.work:
            cutoff = self._count(self.best) - 0.5 if self.best is not None else np.inf
            answer = self._master(cutoff, within=region, prefer=last)
            if answer.infeasible:
                if region is not None:  # nothing better in the region: the whole master next
                    region = None
                    continue
                if self.best is not None:
                    return self.best, "exact"
                if not self._relax_impossible():  # some requirement cannot be met at all: relax those
                    break
                continue
            if region is None and np.isfinite(answer.bound):
                # the whole master's bound on the cost (count ± less than 0.25) bounds the count
                self.lower = max(self.lower, int(np.ceil(answer.bound - 0.25 - TOLERANCE)))
            if answer.suppressed is None:  # the node limit came first
                if region is None:
                    break
                region = None
                continue
            last = answer.suppressed
            proven = answer.proven and region is None
            if proven and self.best is not None and self._count(last) >= self._count(self.best):
                return self.best, "exact"  # HiGHS may not apply the cutoff; its proof holds anyway
            failed = self.problem.audit(last)
            if not failed:
                if proven:
                    return last, "exact"
                self._offer(last)
                if self._count(self.best) <= self.lower:
                    return self.best, "exact"
                region = None
                continue
            before = len(self.cuts)
            if len(failed) <= REPAIR_FAILURES:
                # an answer close to safe, repaired, is often the best pattern so far
                self._offer(self._prune(self._repair(last, failed)))
            else:
                self._add_cuts(failed)
            reserve = 0 if self.best is not None else REPAIR_RESERVE * len(failed)
            region = last.copy() if region is None else region | last
            region[self.cuts.support(before)] = True
            if self.best is not None and self._count(self.best) <= self.lower:
                return self.best, "exact"
        if self.best is not None:
            return self.best, "best found"
        if last is not None:  # the budget ran out before a safe pattern: the last answer, repaired
            return self._prune(self._repair(last), FINAL_PRUNE), "best found"
        return self._prune(self._repair(self._line_heuristic()), FINAL_PRUNE), "fallback"

    def _master(self, cutoff: float, within: np.ndarray | None = None, prefer: np.ndarray | None = None):
        # each MILP gets a share of what is left, paid in nodes and limit checks (not time)
        share = max(self.budget.work - self.work, 0) // MILP_SHARE
        answer = self.master.solve(cutoff, share, within=within, prefer=prefer)
        self.rounds += 1
        self.master_work += answer.work
        return answer

    def _count(self, suppressed: np.ndarray) -> int:
        return int((suppressed & self.problem.eligible).sum())

    def _offer(self, suppressed: np.ndarray) -> None:
        if self.best is None or self._count(suppressed) < self._count(self.best):
            self.best = suppressed.copy()

    def _relax_impossible(self) -> bool:
        failed = self.problem.audit(self.problem.everything())
        for index, _ in failed:
            self.problem.relax(index)
        return bool(failed)

    def _add_cuts(self, failed: list) -> tuple[list[tuple[int, np.ndarray, float]], bool]:
        """The failed requirements' cuts (a requirement no pattern can meet is relaxed instead):
        the cuts kept, and whether a requirement was relaxed."""
        kept, relaxed = [], False
        for index, extreme in failed:
            w, constant = self.problem.cut(index, extreme)
            if w.sum() < self.problem.rhs(index, constant) - TOLERANCE:
                self.problem.relax(index)
                relaxed = True
            else:
                self.cuts.add(index, w, constant)
                kept.append((index, w, constant))
        return kept, relaxed

    def _repair(self, suppressed: np.ndarray, failed: list | None = None) -> np.ndarray:
        """Add cells until the attacker LPs pass (``failed``: the pattern's failures, if known).

        For each failure the protector's cheapest protection is added (its table is then a
        witness, so that requirement holds); where it finds none, the cells of the failure's
        cut with the most room per cost. The pattern only grows, so every witness stays valid
        and each audit solves the LPs of little more than the last failures. A step adds a
        cell or relaxes a requirement, or else hides every cell, so the repair ends whatever
        the budget.
        """
        problem = self.problem
        suppressed = suppressed | problem.fixed
        if failed is None:
            failed = problem.audit(suppressed)
        while failed:
            if suppressed[problem.suppressible].all():  # nothing left to add: these cannot be met
                for index, _ in failed:
                    problem.relax(index)
                failed = problem.audit(suppressed)
                continue
            before = int(suppressed.sum())
            kept, relaxed = self._add_cuts(failed)
            added = np.zeros_like(suppressed)
            for index, w, constant in kept:
                requirement = problem.requirements[index]
                # what earlier protections added is free for the next one: fewer cells in all
                table = self.protector.protect(
                    suppressed | added, requirement.cell, problem.targets[index], requirement.maximize
                )
                if table is not None:
                    moved = problem.moved(table)
                    added[moved] = True
                    problem.witnesses.add(moved, problem.reached(table))
                    continue
                need = problem.rhs(index, constant) - float(w @ (suppressed | added))
                while need > TOLERANCE:
                    candidates = np.flatnonzero(~(suppressed | added) & (w > TOLERANCE) & problem.eligible)
                    if not len(candidates):
                        break
                    gain = np.minimum(w[candidates], need) / problem.cost[candidates]
                    pick = candidates[np.lexsort((candidates, problem.values[candidates], -gain))[0]]
                    added[pick] = True
                    need -= w[pick]
            suppressed |= added & problem.suppressible
            if int(suppressed.sum()) == before and not relaxed:  # the cuts point nowhere: hide all
                suppressed = problem.everything()
            failed = problem.audit(suppressed)
        return suppressed

    def _prune(self, suppressed: np.ndarray, allowance: int = 0) -> np.ndarray:
        """Publish again each secondary cell the attacker LPs do not need, largest first, while
        the budget (and ``allowance`` past it) lasts. A removal that breaks a known cut is not
        tried; one that fails its audit yields cuts like any failure."""
        problem = self.problem
        suppressed = problem.without_alone(suppressed)
        secondary = np.flatnonzero(suppressed & problem.eligible)
        needed, stale = None, True
        for cell in secondary[np.lexsort((secondary, -problem.values[secondary]))]:
            if self.work >= self.budget.work + allowance:
                break
            if not suppressed[cell]:
                continue
            if stale:
                needed, stale = self.cuts.needed(suppressed), False
            if needed[cell]:
                continue
            trial = suppressed.copy()
            trial[cell] = False
            if problem.primary_alone(trial):
                continue
            failed = problem.audit(trial, first=True)
            if failed:
                self._add_cuts(failed)
                stale = True
            else:
                suppressed = problem.without_alone(trial)
                stale = True
        return suppressed

    def _line_heuristic(self) -> np.ndarray:
        """Fixed cells, then for every line with one suppressed cell its smallest other."""
        problem = self.problem
        suppressed = problem.fixed.copy()
        changed = True
        while changed:
            changed = False
            for line in problem.lines:
                hidden = suppressed[line]
                if hidden.sum() == 1 and len(line) > 1:
                    shown = line[~hidden]
                    suppressed[shown[np.lexsort((shown, problem.values[shown]))[0]]] = True
                    changed = True
        return suppressed
