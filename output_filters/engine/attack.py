"""The attacker's audit of a suppression pattern: how well can each suppressed cell be pinned down?

The attacker knows every published cell, that every cell is a linear function of atoms (the
additivity of every table, linked tables included, and consistency rows between blocks of
atoms, which are 0), that atoms lie in [0, grand total] (a-priori bounds as in Tau-Argus),
and, when zeros are always shown, that every suppressed cell is at least 1.
For a suppressed cell the two LPs "minimize / maximize the cell subject to all that" give the
interval it is known to lie in; one suppressed cell alone in a row with a published total
gets an interval of width 0.

A HiGHS model is kept and re-solved with a new objective or new bounds, so consecutive LPs
start from the previous basis (far cheaper than a fresh ``linprog`` each). Each solve also
yields row duals, from which ``capacity_cut`` derives the cut that the suppression model
(``output_filters.engine.cell_suppression``) adds. ``certify`` answers many requirements with
one LP: any table the attacker cannot rule out that reaches a cell's target proves that
requirement, whichever objective found it.

Work is counted (``solves``, ``iterations``: simplex iterations, deterministic), never timed,
and HiGHS runs on one thread with a fixed seed, so the same sequence of LPs gives the same
answers on a busy machine and a quiet one.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from output_filters.engine.linear_system import LinearSystem

INF = highspy.kHighsInf


@dataclass(frozen=True)
class Extreme:
    """The optimum of one attacker LP: its value, the witness table's cells, the row duals."""

    value: float
    cells: np.ndarray
    duals: np.ndarray
    objective: np.ndarray  # the LP's cost vector over atoms (a minimization)


class InconsistentTable(ValueError):
    """The published values contradict each other (no table of counts could produce them)."""


class Attacker:
    """The attacker's LPs over one system, for one suppression pattern at a time.

    ``published`` holds each system cell's value (NaN: never published, e.g. a cell of a
    published table built without true values). ``floor`` is what the attacker knows of a
    suppressed cell from below: 1 when zeros are always shown (a suppressed cell is not 0),
    else 0 — one number, or one per cell (0 for a cell that is never published at all).

    The LP keeps only what the pattern leaves open: atoms that are published cells are
    constants, not columns, and totals made only of such atoms drop out. The model is built
    for a pattern and reused, by changing bounds, for every pattern inside it (removing
    cells one by one), and rebuilt when a pattern reaches beyond it.
    """

    def __init__(self, system: LinearSystem, published: np.ndarray, floor: float | np.ndarray) -> None:
        self.system = system
        self.matrix = system.matrix
        self.published = np.asarray(published, dtype=float)
        n_cells, n_atoms = self.matrix.shape
        self.floor = np.broadcast_to(np.asarray(floor, dtype=float), (n_cells,)).copy()
        self.upper = float(system.upper) if np.isfinite(system.upper) else INF
        sizes = np.diff(self.matrix.indptr)
        # a row with one coefficient of 1 is that atom; anything else (a total, a consistency
        # row with -1 and +1) is a row of the LP
        single = np.flatnonzero(sizes == 1)
        single = single[self.matrix.data[self.matrix.indptr[single]] == 1]
        # an atom that is a cell of its own is that cell: its bounds are the cell's
        self.column_cell = np.full(n_atoms, -1, dtype=np.int64)
        self.column_cell[self.matrix.indices[self.matrix.indptr[single]]] = single
        self.row_cells = np.setdiff1d(np.arange(n_cells), single)
        self.rows = sp.csr_array(self.matrix[self.row_cells])
        self.atom_upper = np.where(np.isfinite(system.atom_upper), system.atom_upper, INF)
        self.suppressed = np.zeros(n_cells, dtype=bool)
        self.solves = 0
        self.iterations = 0
        self._scope: np.ndarray | None = None  # the pattern the model was built for
        self.set_pattern(self.suppressed)

    def cell_bounds(self, suppressed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each cell's bounds for the attacker: its value if published, else [floor, upper]."""
        unknown = np.isnan(self.published)
        lower = np.where(unknown, 0.0, self.published)
        upper = np.where(unknown, self.upper, self.published)
        lower[suppressed] = self.floor[suppressed]
        upper[suppressed] = self.upper
        return lower, upper

    def set_pattern(self, suppressed: np.ndarray) -> None:
        """Publish every cell except ``suppressed`` (a boolean mask over system cells)."""
        self.suppressed = np.asarray(suppressed, dtype=bool).copy()
        if self._scope is None or (self.suppressed & ~self._scope).any():
            self._build(self.suppressed)
        self._apply_bounds(*self.cell_bounds(self.suppressed))

    def _apply_bounds(self, lower: np.ndarray, upper: np.ndarray) -> None:
        self._bounds = (lower, upper)
        self._highs_bounds(lower, upper)

    def _highs_bounds(self, lower: np.ndarray, upper: np.ndarray) -> None:
        own = self.column_cell[self._free]
        has = own >= 0
        col_lower = np.where(has, lower[np.maximum(own, 0)], 0.0)
        col_upper = np.where(has, upper[np.maximum(own, 0)], INF)
        col_upper = np.minimum(col_upper, self.atom_upper[self._free])
        cells = self.row_cells[self._kept]
        self._highs.changeColsBounds(len(own), np.arange(len(own), dtype=np.int32), col_lower, col_upper)
        self._highs.changeRowsBounds(
            len(cells), np.arange(len(cells), dtype=np.int32), lower[cells] - self._offset, upper[cells] - self._offset
        )

    def _build(self, scope: np.ndarray) -> None:
        """The LP for patterns inside ``scope``: free atoms as columns, totals touching them as rows."""
        self._scope = scope.copy()
        own = self.column_cell
        fixed_value = np.where(own >= 0, self.published[np.maximum(own, 0)], np.nan)
        fixed = (own >= 0) & ~scope[np.maximum(own, 0)] & ~np.isnan(fixed_value)
        fixed |= self.atom_upper == 0
        self.constants = np.where(fixed, np.nan_to_num(fixed_value), 0.0)
        self.constants[self.atom_upper == 0] = 0.0
        self._fixed = fixed
        self._free = np.flatnonzero(~fixed)
        self._column = np.full(len(fixed), -1, dtype=np.int64)
        self._column[self._free] = np.arange(len(self._free))
        offsets = self.rows @ self.constants
        touched = (abs(self.rows) @ (~fixed).astype(float)) > 0  # abs: consistency rows have -1 entries
        self._check_fixed_rows(~touched, offsets)
        self._kept = np.flatnonzero(touched)
        self._offset = offsets[self._kept]
        block = sp.csc_array(self.rows[self._kept][:, self._free])
        block.sort_indices()
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = len(self._free), len(self._kept)
        lp.col_cost_ = np.zeros(len(self._free))
        lp.col_lower_ = np.zeros(len(self._free))
        lp.col_upper_ = self.atom_upper[self._free]
        lp.row_lower_ = np.zeros(len(self._kept))
        lp.row_upper_ = np.full(len(self._kept), INF)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = block.indptr.astype(np.int32)
        lp.a_matrix_.index_ = block.indices.astype(np.int32)
        lp.a_matrix_.value_ = block.data.astype(float)
        self._highs = new_highs()
        self._highs.passModel(lp)
        self._cost_columns = np.zeros(0, dtype=np.int32)

    def _check_fixed_rows(self, dropped: np.ndarray, offsets: np.ndarray) -> None:
        cells = self.row_cells[dropped]
        lower, upper = self.cell_bounds(self._scope)
        sums = offsets[dropped]
        if np.any((sums < lower[cells] - 1e-6) | (sums > upper[cells] + 1e-6)):
            raise InconsistentTable(
                "the published cells contradict each other (a total differs from the sum of its published "
                "parts); check that the margins are the true totals of the inner cells"
            )

    def extreme(self, cell: int, maximize: bool) -> Extreme:
        """Solve min (or max) of ``cell``; an unbounded maximum has value ``inf``."""
        atoms = self.matrix.indices[self.matrix.indptr[cell] : self.matrix.indptr[cell + 1]]
        columns = self._column[atoms]
        columns = columns[columns >= 0].astype(np.int32)
        coefficients = self.matrix.data[self.matrix.indptr[cell] : self.matrix.indptr[cell + 1]]
        sign = -1.0 if maximize else 1.0
        keep = self._column[atoms] >= 0
        self._set_cost(columns, sign * coefficients[keep])
        objective = np.zeros(self.matrix.shape[1])
        objective[atoms] = sign * coefficients
        status = self._run()
        if status == highspy.HighsModelStatus.kOptimal:
            cells = self._table()
            duals = np.zeros(len(self.row_cells))
            duals[self._kept] = self._highs.getSolution().row_dual
            return Extreme(float(cells[cell]), cells, duals, objective)
        if status == highspy.HighsModelStatus.kUnbounded and maximize:
            return Extreme(float("inf"), np.full(self.matrix.shape[0], np.nan), np.zeros(0), objective)
        if status == highspy.HighsModelStatus.kInfeasible:
            raise InconsistentTable(
                "the published cells contradict each other (no non-negative table adds up to them); "
                "check that the margins are the true totals of the inner cells"
            )
        raise RuntimeError(
            f"the attacker LP for cell {cell} ended with HiGHS status {status}; please report this table"
        )

    def _run(self) -> highspy.HighsModelStatus:
        self._highs.run()
        self.solves += 1
        self.iterations += max(int(self._highs.getInfo().simplex_iteration_count), 0)
        return self._highs.getModelStatus()

    def _table(self) -> np.ndarray:
        """Every cell's value in the LP's current solution."""
        values = self.constants.copy()
        values[self._free] = self._highs.getSolution().col_value
        return np.asarray(self.matrix @ values, dtype=float)

    def certify(
        self, cells: np.ndarray, targets: np.ndarray, maximize: bool, pinned: np.ndarray | None = None
    ) -> np.ndarray:
        """One table the attacker cannot rule out, pushing every one of ``cells`` towards its target.

        Each cell is capped at its target (a cap only removes tables, so the answer is still
        one the attacker cannot rule out) and the LP maximizes (or minimizes) their sum: every
        cell that reaches its target has its requirement met by this one table. ``pinned``
        cells (a mask) are held at their published values as well (again only fewer tables),
        so the answer moves none of them. Returns all cells' values in it.
        """
        lower, upper = (bound.copy() for bound in self._bounds)
        if pinned is not None:  # cells kept at their true values: fewer tables, all still possible
            pin = pinned & ~np.isnan(self.published)
            lower[pin] = upper[pin] = self.published[pin]
        if maximize:
            upper[cells] = np.maximum(np.minimum(upper[cells], targets), lower[cells])
        else:
            lower[cells] = np.minimum(np.maximum(lower[cells], targets), upper[cells])
        self._highs_bounds(lower, upper)
        rows = sp.csr_array(self.matrix[cells])
        weights = np.asarray(rows.sum(axis=0)).ravel() * (-1.0 if maximize else 1.0)
        columns = np.flatnonzero(weights[self._free]).astype(np.int32)
        self._set_cost(columns, weights[self._free][columns])
        # new bounds make the basis primal infeasible but keep it dual feasible: dual simplex
        self._highs.setOptionValue("simplex_strategy", 1)
        status = self._run()
        self._highs.setOptionValue("simplex_strategy", 4)
        table = self._table() if status == highspy.HighsModelStatus.kOptimal else None
        self._highs_bounds(*self._bounds)
        if table is None:
            raise RuntimeError(f"the attacker's certifying LP ended with HiGHS status {status}; report the table")
        return table

    def _set_cost(self, columns: np.ndarray, costs: np.ndarray) -> None:
        if len(self._cost_columns):
            self._highs.changeColsCost(len(self._cost_columns), self._cost_columns, np.zeros(len(self._cost_columns)))
        self._highs.changeColsCost(len(columns), columns, costs)
        self._cost_columns = columns

    def interval(self, cell: int) -> tuple[float, float]:
        """The attacker's (low, high) for one cell under the current pattern."""
        return self.extreme(cell, maximize=False).value, self.extreme(cell, maximize=True).value

    def capacity_cut(self, extreme: Extreme, values: np.ndarray, target: float) -> tuple[np.ndarray, float]:
        """The cut w·y ≥ rhs that every pattern y meeting "LP minimum ≤ target" satisfies.

        For any multipliers π on the rows, with d = c − Aᵀπ the reduced costs, weak duality
        bounds the LP minimum from below by Σ_rows min(π l, π u) + Σ_columns min(d l, d u).
        A cell's bounds are [v, v] when published and [floor, upper] when suppressed (y = 1),
        so each cell with multiplier μ (π for a row cell, d for a one-atom cell) contributes
        μ·v − w·y with w = μ·(v − floor) if μ > 0, |μ|·(upper − v) if μ < 0. That bound is
        K − w·y, and the requirement needs w·y ≥ K − target. The cut is valid whatever the
        duals' accuracy (it is computed here, not taken from the solver).
        """
        multiplier = np.zeros(self.matrix.shape[0])
        multiplier[self.row_cells] = extreme.duals
        d = extreme.objective - self.rows.T @ extreme.duals
        own = self.column_cell >= 0
        multiplier[self.column_cell[own]] = d[own]
        free = d[~own]
        bounds = self.atom_upper[~own]
        if np.any((free < 0) & ~np.isfinite(bounds)) or (not np.isfinite(self.upper) and np.any(multiplier < 0)):
            return np.zeros_like(values), -np.inf  # no finite bound: nothing to learn from these duals
        atom_term = float(np.minimum(0.0, free * np.where(np.isfinite(bounds), bounds, 0.0)).sum())
        w = np.where(multiplier > 0, multiplier * (values - self.floor), -multiplier * (self.upper - values))
        constant = float(multiplier @ values) + atom_term
        return np.maximum(w, 0.0), constant - target


_banner_shown = False
_banner_lock = threading.Lock()


def new_highs() -> highspy.Highs:
    """A silent HiGHS instance set for hot-started LPs.

    The first instance per process prints a banner on file descriptor 1 before any option can
    be set; in a kernel that would reach the notebook, so it goes to /dev/null.
    """
    global _banner_shown
    with _banner_lock:
        if _banner_shown:
            highs = highspy.Highs()
        else:
            highs = _silently(highspy.Highs)
            _banner_shown = True
    highs.setOptionValue("output_flag", False)
    # one thread and a fixed seed: HiGHS' parallel MIP workers and concurrent simplex can
    # finish in a different order on a busy machine, and then answer differently
    highs.setOptionValue("threads", 1)
    highs.setOptionValue("parallel", "off")
    highs.setOptionValue("random_seed", 0)
    highs.setOptionValue("presolve", "off")  # keeps the basis between solves
    highs.setOptionValue("simplex_strategy", 4)  # primal: after a new objective the basis stays feasible
    return highs


def _silently(make):
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no usable stdout: nothing to protect
        return make()
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            made = make()
            ctypes.CDLL(None).fflush(None)  # the banner may sit in C's stdout buffer
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return made
