"""The master problem of the suppression search: a MILP on HiGHS over which cells to suppress.

A binary y per cell (1 = suppressed; fixed cells at 1, cells that must stay published and
zeros at 0), minimizing the cost of the suppressed cells subject to the capacity cuts found
so far (``Cuts``: each is w·y ≥ rhs, valid for every pattern that meets one requirement) and,
per line (a total and its parts):

- the cut of that line's equation alone, for each primary on it (a cheap share of the cuts
  the LPs would find; ``line_cuts``), and
- "no complementary cell is alone among the line's cells that can be suppressed" — not
  implied by safety, but true of some optimal pattern (a cell alone in a line is known
  exactly, so publishing it changes nothing the attacker knows), and it spares most rounds.

HiGHS runs on one thread with a fixed seed, stopped by counts of its nodes and of its own
limit checks, never by a time limit: the same rows give the same answer on any machine load.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from output_filters.engine.attack import new_highs
from output_filters.engine.problem import TOLERANCE, Problem

Row = tuple[np.ndarray, np.ndarray, float]  # master variables, coefficients, lower bound
GAP = 0.4  # cost = count ± less than 0.25: a gap under 0.4 proves the count
# HiGHS may stop at a pattern up to one cell above its bound: proving the last cell costs most
# of a solve, and the search proves its answer anyway (no pattern below its best, ``Search``)
SEARCH_GAP = 1.4
PREFERENCE = 0.24  # the most the cells a solve prefers take off its cost, in all
# A MILP's work, in the search's units (``cell_suppression.Budget``): a solve, its simplex
# iterations, and per thousand non-zeros of the model (presolve), per limit check (its cut
# rounds and heuristics) and per node, which scale with the model's size
WORK_PER_MILP, WORK_PER_MILP_ITERATION = 150, 7
WORK_PER_KILO_NONZERO, WORK_PER_CHECK_KILO_NONZERO, WORK_PER_NODE_KILO_NONZERO = 30, 3, 3


@dataclass(frozen=True)
class Answer:
    """One master solve: a pattern (None if HiGHS found none), whether it is proven minimal
    for these rows, whether there is none cheaper than the cutoff, the lower bound on the cost
    (``-inf`` if none), and the work done in budget units."""

    suppressed: np.ndarray | None
    proven: bool
    infeasible: bool
    bound: float
    work: int


def line_rows(problem: Problem) -> tuple[list[Row], int]:
    """The "not alone" rows and the master's number of variables (cells, then one z per line).

    "Not alone in a line" as y_c ≤ z ≤ Σ y / 2 with a z in [0, 1] per line takes 2·|line| + 1
    non-zeros instead of |line|² for the rows Σ(others) ≥ y_c, and is as strong. A hidden cell
    that is not a primary may be alone (an earlier output's choice, with nothing to protect).
    """
    rows: list[Row] = []
    n_vars = problem.system.n_cells
    for line in problem.lines:
        if len(line) < 2:
            continue
        z, n_vars = n_vars, n_vars + 1
        bound = line[~problem.hidden[line] | problem.primary[line]]
        rows.extend((np.array([z, cell]), np.array([1.0, -1.0]), 0.0) for cell in bound)
        rows.append((np.append(line, z), np.append(np.ones(len(line)), -2.0), 0.0))
    return rows, n_vars


def line_cuts(problem: Problem) -> list[tuple[int, np.ndarray, np.ndarray, float]]:
    """For each primary and line through it, the capacity cut of that line's equation alone,
    as (requirement, cells, weights, constant) like the LPs' cuts (``Problem.rhs`` gives its
    right side): moving the primary by d needs d of room among the line's other cells.

    A part moves against the other parts or with the total; the total moves only with one of
    its parts. Room down is v − floor, room up is the grand total − v.
    """
    by_cell: dict[int, list[int]] = {}
    for index, requirement in enumerate(problem.requirements):
        by_cell.setdefault(requirement.cell, []).append(index)
    down = problem.values - problem.attacker.floor
    rise = problem.upper - problem.values
    cuts = []
    for total, parts in problem.system.equations:
        line = np.array((total, *parts), dtype=np.int64)
        usable = problem.suppressible[line]
        for position, cell in enumerate(line):
            for index in by_cell.get(int(cell), []):
                up = problem.requirements[index].maximize
                with_cell = rise if up else down  # cells that move the same way as ``cell``
                against = down if up else rise
                if position == 0:  # the total: its parts move with it
                    room = with_cell[line]
                else:  # a part: the other parts move against it, the total with it
                    room = against[line].copy()
                    room[0] = with_cell[line[0]]
                keep = usable & (np.arange(len(line)) != position) & (room > TOLERANCE)
                constant = problem.values[cell] * (-1.0 if up else 1.0)
                cuts.append((index, line[keep], room[keep], constant))
    return cuts


class Master:
    """The master MILP, kept in one HiGHS model: each solve adds the cuts found since the last.

    ``solve`` minimizes the cost of the suppressed cells subject to the "not alone" rows, the
    cuts so far and, for a restricted solve, ``within`` (only those cells may be suppressed);
    cells of ``prefer`` cost a little less, so that of patterns with one count the one
    closest to it wins. HiGHS stops at the first of: a proof of the count, as many
    branch-and-bound nodes, or as many of its own limit checks (made at fixed points of its
    search, the root's cut rounds included, which a node limit does not bound), as ``work``
    pays for; then it returns the best pattern found, if any. All are counts: the answer
    does not depend on time. Only patterns cheaper than ``cutoff`` are of interest:
    ``infeasible`` if there is none.
    """

    def __init__(self, problem: Problem, cuts: Cuts) -> None:
        self.problem = problem
        self.cuts = cuts
        self.base, self.n_vars = line_rows(problem)
        self._highs: highspy.Highs | None = None
        self._synced = (0, -1)  # (cuts in the model, relaxations they reflect)

    def solve(
        self,
        cutoff: float,
        work: int,
        within: np.ndarray | None = None,
        prefer: np.ndarray | None = None,
    ) -> Answer:
        highs = self._sync()
        kilo = highs.getNumNz() / 1000.0
        # the nodes and limit checks that ``work`` pays for (at least a few, to get an answer)
        steps = (work - WORK_PER_MILP - WORK_PER_KILO_NONZERO * kilo) / (WORK_PER_CHECK_KILO_NONZERO * kilo + 1.0)
        nodes = checks = int(max(2, min(steps, 2**30)))
        problem, n = self.problem, self.problem.system.n_cells
        cost = problem.cost.copy()
        if prefer is not None and (prefer & problem.eligible).any():
            # among patterns of one count, the one closest to ``prefer``: consecutive answers
            # then differ where they must, and the audit's witnesses stay valid elsewhere
            chosen = prefer & problem.eligible
            cost[chosen] -= PREFERENCE / chosen.sum()
        highs.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
        upper = problem.suppressible if within is None else problem.suppressible & (within | problem.fixed)
        highs.changeColsBounds(n, np.arange(n, dtype=np.int32), problem.fixed.astype(float), upper.astype(float))
        highs.setOptionValue("mip_max_nodes", int(min(max(nodes, 1), 2**31 - 1)))
        highs.setOptionValue("mip_abs_gap", SEARCH_GAP)
        highs.setOptionValue("objective_bound", float(cutoff) if np.isfinite(cutoff) else highspy.kHighsInf)
        made = [0]

        def count_checks(event) -> None:
            made[0] += 1
            if made[0] >= checks:
                event.data_in.user_interrupt = True

        highs.cbMipInterrupt.subscribe(count_checks)
        highs.run()
        highs.cbMipInterrupt.unsubscribe(count_checks)
        status = highs.getModelStatus()
        info = highs.getInfo()
        steps = WORK_PER_CHECK_KILO_NONZERO * made[0] + WORK_PER_NODE_KILO_NONZERO * max(int(info.mip_node_count), 0)
        work = WORK_PER_MILP + WORK_PER_MILP_ITERATION * max(int(info.simplex_iteration_count), 0)
        work += int(kilo * (WORK_PER_KILO_NONZERO + steps))
        # HiGHS reports +inf (or a value above its own answer) when it stopped before bounding
        # anything: that is no bound
        bound = float(info.mip_dual_bound)
        if not np.isfinite(bound) or (info.primal_solution_status == 2 and bound > info.objective_function_value + 1):
            bound = -np.inf
        if status in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kObjectiveBound):
            return Answer(None, True, True, bound, work)
        if info.primal_solution_status == 2:
            suppressed = np.asarray(highs.getSolution().col_value)[:n] > 0.5
            proven = status == highspy.HighsModelStatus.kOptimal and info.objective_function_value - bound < GAP
            return Answer(suppressed, proven, False, bound, work)
        return Answer(None, False, False, bound, work)

    def _sync(self) -> highspy.Highs:
        """The model with every cut so far (rebuilt when a relaxation changed their sides)."""
        if self._highs is None or self._synced[1] != self.problem.version:
            self._highs = self._build()
            self._synced = (0, self.problem.version)
        done = self._synced[0]
        if len(self.cuts) > done:
            matrix, rhs = self.cuts.capped()
            rows = sp.csr_array(matrix[done:])
            lower = np.where(rhs[done:] > TOLERANCE, rhs[done:] - TOLERANCE, -highspy.kHighsInf)
            self._highs.addRows(
                rows.shape[0],
                lower,
                np.full(rows.shape[0], highspy.kHighsInf),
                rows.nnz,
                rows.indptr[:-1].astype(np.int32),
                rows.indices.astype(np.int32),
                rows.data.astype(float),
            )
            self._synced = (len(self.cuts), self.problem.version)
        return self._highs

    def _build(self) -> highspy.Highs:
        problem, rows, n_vars = self.problem, self.base, self.n_vars
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
        lp.col_lower_ = np.concatenate([problem.fixed.astype(float), np.zeros(extra)])
        lp.col_upper_ = np.concatenate([problem.suppressible.astype(float), np.ones(extra)])
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
        highs.setOptionValue("mip_rel_gap", 0.0)
        # symmetry detection costs time that no count of HiGHS' work includes, and finds
        # nothing to use in these models
        highs.setOptionValue("mip_detect_symmetry", False)
        highs.passModel(lp)
        return highs


class Cuts:
    """The capacity cuts found so far, as one sparse matrix for the master and for quick checks.

    A pattern that violates a cut fails that cut's requirement, so a trial pattern is
    rejected without an LP when one of them fails.
    """

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.index: list[int] = []
        self.constant: list[float] = []
        self._rows: list[tuple[np.ndarray, np.ndarray]] = []
        self._matrix: sp.csr_array | None = None
        self._capped: tuple[int, int, sp.csr_array, np.ndarray, sp.csc_array] | None = None

    def __len__(self) -> int:
        return len(self.index)

    def add(self, index: int, w: np.ndarray, constant: float) -> None:
        """Keep the cut w·y ≥ ``Problem.rhs(index, constant)`` (w dense over the cells)."""
        cells = np.flatnonzero(w > TOLERANCE)
        self.add_sparse(index, cells, w[cells], constant)

    def add_sparse(self, index: int, cells: np.ndarray, weights: np.ndarray, constant: float) -> None:
        self.index.append(int(index))
        self.constant.append(float(constant))
        self._rows.append((np.asarray(cells, dtype=np.int64), np.asarray(weights, dtype=float)))
        self._matrix = None

    def matrix(self) -> sp.csr_array:
        if self._matrix is None:
            n = self.problem.system.n_cells
            indptr = np.zeros(len(self._rows) + 1, dtype=np.int64)
            indptr[1:] = np.cumsum([len(cells) for cells, _ in self._rows])
            indices = np.concatenate([cells for cells, _ in self._rows]) if self._rows else np.zeros(0, dtype=np.int64)
            data = np.concatenate([w for _, w in self._rows]) if self._rows else np.zeros(0)
            self._matrix = sp.csr_array((data, indices, indptr), shape=(len(self._rows), n))
        return self._matrix

    def rhs(self) -> np.ndarray:
        """Each cut's right-hand side for its requirement's current target."""
        index = np.array(self.index, dtype=np.int64)
        signed = np.where(self.problem.sign[index] > 0, -self.problem.targets[index], self.problem.targets[index])
        return np.array(self.constant) - signed

    def support(self, start: int = 0) -> np.ndarray:
        """The cells that appear in the cuts from number ``start`` on."""
        return np.unique(self.matrix()[start:].indices)

    def capped(self) -> tuple[sp.csr_array, np.ndarray]:
        """The cuts with coefficients capped at their right-hand sides, and those sides."""
        key = (len(self.index), self.problem.version)
        if self._capped is None or self._capped[:2] != key:
            matrix, rhs = self.matrix().copy(), self.rhs()
            matrix.data = np.minimum(matrix.data, np.repeat(rhs, np.diff(matrix.indptr)))
            self._capped = (*key, matrix, rhs, sp.csc_array(matrix))
        return self._capped[2], self._capped[3]

    def violated(self, suppressed: np.ndarray) -> bool:
        """Whether a pattern fails one of the cuts (then it is not safe)."""
        if not self.index:
            return False
        matrix, rhs = self.capped()
        return bool(np.any(matrix @ suppressed.astype(float) < rhs - TOLERANCE))

    def needed(self, suppressed: np.ndarray) -> np.ndarray:
        """Cells of a pattern that no cut lets go: publishing one of them alone fails a cut."""
        needed = np.zeros(len(suppressed), dtype=bool)
        if not self.index:
            return needed
        matrix, rhs = self.capped()
        slack = matrix @ suppressed.astype(float) - rhs
        by_cell = self._capped[4]
        rows = by_cell.indices
        over = by_cell.data > slack[rows] + TOLERANCE
        columns = np.repeat(np.arange(by_cell.shape[1]), np.diff(by_cell.indptr))
        needed[columns[over]] = True
        return needed & suppressed
