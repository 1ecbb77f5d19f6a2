"""Choose the fewest cells to suppress so that every small count keeps its protection interval.

Exact model: Fischetti and Salazar's, as behind Tau-Argus OPT. A binary y per cell
(1 = suppressed; primaries fixed to 1, zeros to 0) and, for each primary and direction, the
capacity constraints w·y ≥ rhs that the attacker LP's duals give (``Attacker.capacity_cut``).
By weak duality every such cut holds for every pattern that meets the requirement; a
pattern whose attacker LPs pass meets it. So the loop — solve the master "min Σ cost·y
subject to the cuts so far" to optimality (a MILP on HiGHS), audit its answer with the
attacker LPs, add the cuts of the failed LPs — ends with a safe pattern of minimum cell
count (Benders-style row generation; Tau-Argus generates the same cuts inside one
branch-and-cut tree). The master also starts with, per line (a total and its parts):

- the cut of that line's equation alone, for each primary on it (a cheap share of the
  cuts the LPs would find), and
- "no suppressed cell is alone among the line's non-zero cells" — not implied by safety,
  but true of some optimal pattern (a cell alone in a line is known exactly, so publishing
  it changes nothing the attacker knows), and it spares most rounds.

The cost is 1 + a small term in the value (below 0.5 in all), so the count is minimized
first and ties go to small cells; a gap under 0.4 proves the count.

Upper bounds, for the proof and for the time limit: each failed master answer is repaired
(the cells of each violated cut with the most room, until the LPs pass) and pruned
(secondaries published again, largest first, while the LPs still pass). Once the master
cannot beat the best such pattern (``objective_bound`` in HiGHS), that pattern is optimal.
When ``Policy.suppression_seconds`` runs out first (95 % of it: the rest is for publishing),
the best one is returned (a repair under way when there is none yet is finished); if not
even the first master finished, the hypercube line heuristic (as in
``output_filters.engine.suppress``), repaired and pruned. Every answer has passed the attacker LPs;
suppressing every non-zero cell always does (requirements no pattern meets are lowered
first), so repairs end. HiGHS is deterministic: the same table gives the same pattern unless
the time limit cuts the search at a different point (``output_filters.engine.secondary`` caches
answers, so a table shown twice in a session is suppressed the same way).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from output_filters.engine.attack import new_highs
from output_filters.engine.linear_system import LinearSystem
from output_filters.engine.problem import TOLERANCE, Problem

Row = tuple[np.ndarray, np.ndarray, float]  # master variables, coefficients, lower bound


@dataclass(frozen=True)
class Pattern:
    """A suppression pattern over a system's cells and how it was found.

    ``method``: "none" (no primary cell), "exact" (proven minimum count), "best found" (the
    time limit ended the proof; the best audited pattern of the search) or "fallback" (the
    time limit ended the search before it found one: line heuristic, repaired).
    """

    suppressed: np.ndarray
    primary: np.ndarray
    method: str
    seconds: float
    attacker_lps: int = 0
    rounds: int = 0

    @property
    def optimal(self) -> bool:
        return self.method in ("none", "exact")


def suppress_system(
    system: LinearSystem, threshold: int, interval: float, show_zeros: bool, seconds: float | None
) -> Pattern:
    """The suppression pattern for a system, exact within ``seconds`` (None: no limit)."""
    start = time.monotonic()
    values = system.cell_values
    primary = (values > 0) & (values < threshold)
    if not primary.any():
        return Pattern(primary.copy(), primary, "none", time.monotonic() - start)
    problem = Problem(system, threshold, interval, show_zeros)
    # 5 % of the limit is left for the answer's last audit and the published table
    deadline = np.inf if seconds is None else start + 0.95 * seconds
    suppressed, optimal, rounds = _exact(problem, deadline)
    method = "exact" if optimal else "best found"
    if suppressed is None:
        method = "fallback"
        cuts: list = []
        suppressed = _repair(problem, _line_heuristic(problem), cuts)
        suppressed = _prune(problem, suppressed, cuts, start + 1.5 * seconds)
    return Pattern(suppressed, primary, method, time.monotonic() - start, problem.attacker.solves, rounds)


def _exact(problem: Problem, deadline: float) -> tuple[np.ndarray | None, bool, int]:
    """Row generation until the master cannot beat the best safe pattern found.

    Returns (best safe pattern or None, proven optimal, master rounds).
    """
    base, n_vars = _line_rows(problem)
    cuts: list[tuple[int, np.ndarray, float]] = []  # (requirement, w, constant)
    best: np.ndarray | None = None
    rounds = 0
    while time.monotonic() < deadline:
        # only patterns with fewer cells than the best safe one are of interest
        cutoff = float(best.sum()) - 0.5 if best is not None else np.inf
        suppressed, status = _master(problem, _rows(problem, base, cuts), n_vars, deadline, cutoff)
        rounds += 1
        if status == "timeout":
            break
        if status == "infeasible" and best is not None:
            return best, True, rounds
        if status == "infeasible":  # some requirement cannot be met at all: relax those
            for index, _ in problem.audit(problem.eligible.copy()):
                problem.relax(index)
            continue
        failed = problem.audit(suppressed)
        if not failed:
            return suppressed, True, rounds
        _add_cuts(problem, failed, cuts)
        # past the deadline a repair goes on only if there is no safe pattern yet
        repaired = _repair(problem, suppressed, cuts, deadline if best is not None else np.inf)
        if repaired is None:
            break
        found = _prune(problem, repaired, cuts, deadline)
        if best is None or found.sum() < best.sum():
            best = found
    return best, False, rounds


def _line_rows(problem: Problem) -> tuple[list[Row], int]:
    """The master's first rows and its number of variables (cells, then one z per line).

    "Not alone in a line" as y_c ≤ z ≤ Σ y / 2 with a z in [0, 1] per line takes 2·|line| + 1
    non-zeros instead of |line|² for the rows Σ(others) ≥ y_c, and is as strong.
    """
    rows: list[Row] = []
    by_cell: dict[int, list[int]] = {}
    for index, requirement in enumerate(problem.requirements):
        by_cell.setdefault(requirement.cell, []).append(index)
    n_vars = problem.system.n_cells
    for (total, parts), line in zip(problem.system.equations, problem.lines, strict=True):
        if len(line) < 2:
            continue
        z, n_vars = n_vars, n_vars + 1
        rows.extend((np.array([z, cell]), np.array([1.0, -1.0]), 0.0) for cell in line)
        rows.append((np.append(line, z), np.append(np.ones(len(line)), -2.0), 0.0))
        for cell in line[problem.primary[line]]:
            for index in by_cell.get(int(cell), []):
                need = abs(problem.targets[index] - problem.values[cell])
                room = _line_room(problem, int(cell), total, parts, problem.requirements[index].maximize)
                cells = np.array([c for c in room if problem.eligible[c]], dtype=np.int64)
                if len(cells):
                    rows.append((cells, np.minimum([room[c] for c in cells], need), need))
    return rows, n_vars


def _line_room(problem: Problem, cell: int, total: int, parts: tuple[int, ...], up: bool) -> dict[int, float]:
    """How far each other cell of a line can move to let ``cell`` move up (or down).

    The cut of the dual that is the line's equation alone: a part moves against the other
    parts or with the total; the total moves only with one of its parts.
    """
    values, floor, upper = problem.values, problem.floor, problem.upper
    down = {c: values[c] - floor[c] for c in (total, *parts)}
    rise = {c: upper - values[c] for c in (total, *parts)}
    if cell == total:
        return {c: (rise if up else down)[c] for c in parts}
    room = {c: (down if up else rise)[c] for c in parts if c != cell}
    room[total] = (rise if up else down)[total]
    return room


def _rows(problem: Problem, base: list[Row], cuts: list) -> list[Row]:
    """The base rows and every cut, with coefficients capped at the right-hand side (valid
    for binary y, and tighter)."""
    rows = list(base)
    for index, w, constant in cuts:
        rhs = problem.rhs(index, constant)
        cells = np.flatnonzero(w > TOLERANCE)
        rows.append((cells, np.minimum(w[cells], rhs), rhs - TOLERANCE))
    return rows


def _add_cuts(problem: Problem, failed: list, cuts: list) -> None:
    """The failed requirements' cuts (a requirement no pattern can meet is relaxed instead)."""
    for index, extreme in failed:
        w, constant = problem.cut(index, extreme)
        if w.sum() < problem.rhs(index, constant) - TOLERANCE:
            problem.relax(index)
        else:
            cuts.append((index, w, constant))


def _master(problem: Problem, rows: list[Row], n_vars: int, deadline: float, cutoff: float) -> tuple[np.ndarray, str]:
    """Minimize the cost of the suppressed cells subject to ``rows`` (a MILP on HiGHS).

    Only patterns cheaper than ``cutoff`` are of interest: "infeasible" if there is none.
    """
    n = problem.system.n_cells
    data = np.concatenate([coef for _, coef, _ in rows]) if rows else np.zeros(0)
    columns = np.concatenate([cells for cells, _, _ in rows]) if rows else np.zeros(0, dtype=np.int64)
    row_ids = np.repeat(np.arange(len(rows)), [len(cells) for cells, _, _ in rows])
    matrix = sp.csc_array((data, (row_ids, columns)), shape=(len(rows), n_vars))
    matrix.sum_duplicates()
    matrix.sort_indices()
    extra = n_vars - n
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_vars, len(rows)
    lp.col_cost_ = np.concatenate([problem.cost, np.zeros(extra)])
    lp.col_lower_ = np.concatenate([problem.primary.astype(float), np.zeros(extra)])
    lp.col_upper_ = np.concatenate([problem.eligible.astype(float), np.ones(extra)])
    lp.row_lower_ = np.array([rhs for _, _, rhs in rows], dtype=float)
    lp.row_upper_ = np.full(len(rows), highspy.kHighsInf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
    lp.a_matrix_.value_ = matrix.data.astype(float)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n_vars
    highs = new_highs()
    highs.setOptionValue("simplex_strategy", 1)
    highs.setOptionValue("presolve", "on")
    if np.isfinite(deadline):
        highs.setOptionValue("time_limit", max(deadline - time.monotonic(), 0.01))
    highs.setOptionValue("mip_abs_gap", 0.4)  # cost = count + less than 0.5
    highs.setOptionValue("mip_rel_gap", 0.0)
    if np.isfinite(cutoff):
        highs.setOptionValue("objective_bound", float(cutoff))
    highs.passModel(lp)
    highs.run()
    status = highs.getModelStatus()
    if status == highspy.HighsModelStatus.kOptimal and highs.getInfo().primal_solution_status == 2:
        return np.asarray(highs.getSolution().col_value)[:n] > 0.5, "optimal"
    if status in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kObjectiveBound):
        return np.zeros(n, dtype=bool), "infeasible"
    return np.zeros(n, dtype=bool), "timeout"


def _line_heuristic(problem: Problem) -> np.ndarray:
    """Primaries, then for every line with one suppressed non-zero cell its smallest other."""
    suppressed = problem.primary.copy()
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


def _repair(problem: Problem, suppressed: np.ndarray, cuts: list, deadline: float = np.inf) -> np.ndarray | None:
    """Add cells until the attacker LPs pass: for each failure, its cut's cells with the most
    room per cost. The cuts met on the way are kept in ``cuts`` for the master. None if the
    deadline passes first."""
    suppressed = suppressed.copy()
    while failed := problem.audit(suppressed):
        if time.monotonic() >= deadline:
            return None
        if suppressed[problem.eligible].all():  # nothing left to add: these cannot be met
            for index, _ in failed:
                problem.relax(index)
            continue
        before, relaxed = int(suppressed.sum()), False
        for index, extreme in failed:
            w, constant = problem.cut(index, extreme)
            rhs = problem.rhs(index, constant)
            if w.sum() < rhs - TOLERANCE:
                problem.relax(index)
                relaxed = True
                continue
            cuts.append((index, w, constant))
            need = rhs - float(w @ suppressed)
            while need > TOLERANCE:
                candidates = np.flatnonzero(~suppressed & (w > TOLERANCE))
                if not len(candidates):
                    break
                gain = np.minimum(w[candidates], need) / problem.cost[candidates]
                pick = candidates[np.lexsort((candidates, problem.values[candidates], -gain))[0]]
                suppressed[pick] = True
                need -= w[pick]
        if int(suppressed.sum()) == before and not relaxed:  # the cuts point nowhere: hide all
            suppressed = problem.eligible.copy()
    return suppressed


def _prune(problem: Problem, suppressed: np.ndarray, cuts: list, deadline: float) -> np.ndarray:
    """Publish again each secondary cell the attacker LPs do not need, largest first (until
    ``deadline``). A removal that fails yields a cut like any failure."""
    suppressed = problem.without_alone(suppressed)
    secondary = np.flatnonzero(suppressed & ~problem.primary)
    for cell in secondary[np.lexsort((secondary, -problem.values[secondary]))]:
        if time.monotonic() >= deadline:
            break
        if not suppressed[cell]:
            continue
        trial = suppressed.copy()
        trial[cell] = False
        if problem.primary_alone(trial):
            continue
        failed = problem.audit(trial, first=True)
        if failed:
            _add_cuts(problem, failed, cuts)
        else:
            suppressed = problem.without_alone(trial)
    return suppressed
