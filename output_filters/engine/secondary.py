"""Secondary suppression of count tables, optimal and audited: the public entry points.

``protect(counts)`` takes an inner table of counts (a DataFrame for 2-D, a Series for 1-D or,
with a MultiIndex, 3-D and more), publishes it with every margin (``All`` rows, columns and
labels, every combination of totals, and a subtotal per parent of a hierarchical
dimension), suppresses every published cell with 0 < n < threshold (primary) and the fewest
further cells (secondary) so that an attacker's LP cannot narrow any primary below its
protection interval. Zeros are shown and never suppressed. The answer has always passed
the attacker's LPs; ``optimal`` says whether its cell count is also a proven minimum.

Linked tables (two tables over the same records, e.g. school × grade and school × grade
band, or a crosstab and a ``value_counts`` of one of its columns) must be protected
together, or the attacker combines them:

    atoms = atoms_from_records(records, ["school", "grade"])
    tables = [
        table_cells(atoms, ["school", "grade"]),
        table_cells(atoms, ["school", Dimension("grade", recode=band_of_grade, name="band")]),
    ]
    by_grade, by_band = protect_tables(atoms, tables)

``attack(published)`` is the attacker's audit of a published table (as ``protect`` returns
it); ``attack_system`` of a pattern on a ``LinearSystem``. A table's pattern is a pure
function of its counts, its labels and the policy (the search's budget is counted work,
never time), so the same table gets the same pattern in every process, on a busy machine
and a quiet one: two different safe patterns of one table can be unsafe together. Patterns
are also remembered per process (``CACHE_SIZE``), which only saves the work.

Without a ``policy``, every entry point uses the consortium's (``policy.toml``, through
``output_filters.policy.current_policy``), not the dataclass defaults.

The model and its fallback: ``output_filters.engine.cell_suppression``; tables as linear systems:
``output_filters.engine.linear_system``; the attacker: ``output_filters.engine.attack``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from output_filters.engine.attack import Attacker
from output_filters.engine.cell_suppression import Pattern, suppress_system
from output_filters.engine.linear_system import (
    ALL,
    Atoms,
    Dimension,
    LinearSystem,
    TableCells,
    atoms_from_counts,
    table_cells,
)
from output_filters.policy import Policy, current_policy

Hierarchies = Mapping[Hashable, Mapping[Hashable, Hashable]]
CACHE_SIZE = 256  # patterns remembered per process
_CACHE: OrderedDict[str, Pattern] = OrderedDict()
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Suppression:
    """A published table and what was suppressed in it (masks align with ``table``).

    ``optimal``: the number of suppressed cells is a proven minimum; otherwise the work
    budget ended the exact search and its best (always audited) pattern was used.
    ``seconds`` is how long it took (for information; the pattern never depends on it).
    """

    table: pd.DataFrame | pd.Series
    primary: pd.DataFrame | pd.Series
    secondary: pd.DataFrame | pd.Series
    note: str
    optimal: bool
    seconds: float


def protect(
    counts: pd.DataFrame | pd.Series,
    policy: Policy | None = None,
    hierarchies: Hierarchies | None = None,
    *,
    margins_name: str = ALL,
) -> Suppression:
    """Publish ``counts`` with all margins, small cells and their protection suppressed.

    ``hierarchies`` maps a dimension (index/columns name, or Series level name; an unnamed
    DataFrame's axes are ``"index"`` and ``"columns"``) to ``{child: parent}``, adding a
    subtotal per parent (institution → segment). Missing values count as 0; a Series' absent
    index combinations are zeros. Suppressed cells are ``pd.NA`` in nullable ``Int64``.
    Without ``policy``, the consortium's (``policy.toml``).
    """
    policy = policy or current_policy()
    values = validate_counts(counts)
    atoms = atoms_from_counts(counts, values)
    dims = [Dimension(name, parents=(hierarchies or {}).get(name)) for name in atoms.dimensions]
    _check_hierarchy_keys(hierarchies, atoms.dimensions)
    table = table_cells(atoms, dims, margins_name=margins_name)
    values_by_cell = np.asarray(table.membership @ atoms.counts.ravel(), dtype=float)
    primary_cells = (values_by_cell > 0) & (values_by_cell < policy.threshold)
    if not primary_cells.any():  # the common case: no LP, no MILP
        nothing = np.zeros_like(primary_cells)
        return _result(counts, table, values_by_cell, nothing, nothing, True, 0.0, policy)
    if len(atoms.dimensions) == 1 and not hierarchies:  # one line and its total: exact in closed form
        suppressed = _protect_line(values_by_cell[:-1], primary_cells[:-1], policy)
        return _result(
            counts, table, values_by_cell, np.append(suppressed, primary_cells[-1]), primary_cells, True, 0.0, policy
        )
    system = LinearSystem.link(atoms, [table])
    start = time.perf_counter()
    pattern = _solve(system, policy)
    seconds = time.perf_counter() - start
    position = system.positions[0]
    return _result(
        counts,
        table,
        values_by_cell,
        pattern.suppressed[position],
        pattern.primary[position],
        pattern.optimal,
        seconds,
        policy,
    )


def _protect_line(values: np.ndarray, primary: np.ndarray, policy: Policy) -> np.ndarray:
    """The fewest cells of one line with a published total that protect its primaries.

    With the total known, the attacker can raise a suppressed cell v by what the other
    suppressed cells hold above their lower bound (1 when zeros are shown, else 0), and lower
    it to its bound as soon as another cell is suppressed. So every primary needs
    sum over the other suppressed cells of (value - bound) >= ceil(max(1, p * v)). Each cell
    added lowers every shortfall by its (value - bound): the fewest cells are the largest
    ones; among sets of that size, the smallest cells that still cover the shortfall are taken.
    """
    bound = 1.0 if policy.show_zeros else 0.0
    suppressed = primary.copy()
    room = np.ceil(np.maximum(1.0, policy.protection_interval * values))
    held = np.where(suppressed, values - bound, 0.0)
    shortfall = float(np.max(np.where(primary, room - (held.sum() - held), -np.inf)))
    if shortfall <= 0:
        return suppressed
    free = np.flatnonzero(~suppressed & (values > 0))
    gains = values[free] - bound
    order = np.argsort(-gains, kind="stable")
    covered = np.cumsum(gains[order])
    count = int(np.searchsorted(covered, shortfall) + 1) if covered.size and covered[-1] >= shortfall else len(free)
    chosen: list[int] = []
    left = list(order)  # candidates, largest gain first
    need = shortfall
    for slot in range(count):
        rest = count - slot - 1
        for candidate in reversed(left):  # smallest first
            others = [g for g in left if g != candidate][:rest]
            if gains[candidate] + gains[others].sum() >= need or rest == len(left) - 1:
                chosen.append(candidate)
                left.remove(candidate)
                need -= gains[candidate]
                break
    suppressed[free[chosen]] = True
    return suppressed


def protect_tables(atoms: Atoms, tables: Sequence[TableCells], policy: Policy | None = None) -> list[Suppression]:
    """Protect linked tables jointly: one pattern, no primary recoverable from all of them.

    Build ``atoms`` with ``atoms_from_records`` and each table with ``table_cells``. Two-axis
    tables come back as DataFrames, others as Series.
    """
    policy = policy or current_policy()
    system = LinearSystem.link(atoms, tables)
    start = time.perf_counter()
    pattern = _solve(system, policy)
    seconds = time.perf_counter() - start
    values = system.cell_values
    results = []
    for table, position in zip(system.tables, system.positions, strict=True):
        results.append(
            _result(
                None,
                table,
                values[position],
                pattern.suppressed[position],
                pattern.primary[position],
                pattern.optimal,
                seconds,
                policy,
            )
        )
    return results


def attack(
    published: pd.DataFrame | pd.Series,
    policy: Policy | None = None,
    hierarchies: Hierarchies | None = None,
    *,
    margins_name: str = ALL,
) -> dict[Hashable, tuple[float, float]]:
    """The attacker's interval {label: (low, high)} for every suppressed (``NA``) cell.

    ``published`` is a table as ``protect`` returns it: inner cells and ``All`` margins
    (subtotals too, with the same ``hierarchies``). The a-priori bounds are [0, grand total]
    (unbounded above when the grand total is suppressed) and, when the policy shows zeros,
    at least 1 for a suppressed cell.
    """
    policy = policy or current_policy()
    system, shown, labels = _system_from_published(published, hierarchies, margins_name)
    suppressed = np.zeros(system.n_cells, dtype=bool)
    suppressed[[cell for cell, _ in labels]] = True
    suppressed &= np.isnan(shown)  # a cell shown at another position of the table is known
    labels = [(cell, label) for cell, label in labels if suppressed[cell]]
    attacker = Attacker(system, np.where(suppressed, np.nan, shown), 1.0 if policy.show_zeros else 0.0)
    attacker.set_pattern(suppressed)
    intervals = {cell: attacker.interval(cell) for cell in sorted(set(suppressed.nonzero()[0]))}
    return {label: intervals[cell] for cell, label in labels}


def attack_system(
    system: LinearSystem, suppressed: np.ndarray, policy: Policy | None = None
) -> dict[int, tuple[float, float]]:
    """The attacker's interval for every suppressed cell of ``system`` (others published)."""
    policy = policy or current_policy()
    attacker = Attacker(system, system.cell_values, 1.0 if policy.show_zeros else 0.0)
    attacker.set_pattern(suppressed)
    return {int(cell): attacker.interval(int(cell)) for cell in np.flatnonzero(suppressed)}


def validate_counts(counts: pd.DataFrame | pd.Series) -> np.ndarray:
    """The counts as floats (missing → 0), or a ValueError naming the first bad cell."""
    if not isinstance(counts, pd.DataFrame | pd.Series):
        raise TypeError(f"protect needs a pandas DataFrame or Series of counts, not {type(counts).__name__}")
    if counts.size == 0:
        raise ValueError("the count table is empty: there is nothing to publish")
    frame = counts.to_frame() if isinstance(counts, pd.Series) else counts
    for column in frame.columns:
        dtype = frame[column].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise ValueError(f"counts must be numbers; column {column!r} holds {dtype} values")
    values = frame.astype("float64").fillna(0.0).to_numpy(dtype=float)
    for problem, bad in (
        ("negative", values < 0),
        ("infinite", ~np.isfinite(values)),
        ("non-integer", np.isfinite(values) & (values != np.round(values))),
    ):
        if bad.any():
            row, col = np.argwhere(bad)[0]
            where = (frame.index[row], frame.columns[col]) if isinstance(counts, pd.DataFrame) else frame.index[row]
            raise ValueError(
                f"counts must be whole numbers of records (0 or more); {problem} value {values[row, col]} "
                f"at {where!r}: pass counts, not rates or means"
            )
    return values if isinstance(counts, pd.DataFrame) else values[:, 0]


def _solve(system: LinearSystem, policy: Policy) -> Pattern:
    """The pattern for a system, remembered per process (the search is deterministic: this
    only saves its work when a table is shown again)."""
    key = hashlib.sha256()
    for part in (
        system.matrix.indptr,
        system.matrix.indices,
        system.matrix.data,
        system.atom_values,
        system.atom_upper,
    ):
        key.update(np.ascontiguousarray(part).tobytes())
    settings = (
        policy.threshold,
        policy.protection_interval,
        policy.show_zeros,
        policy.suppression_work,
    )
    key.update(repr(settings).encode())
    digest = key.hexdigest()
    with _CACHE_LOCK:
        if digest in _CACHE:
            _CACHE.move_to_end(digest)
            return _CACHE[digest]
    pattern = suppress_system(system, policy)
    with _CACHE_LOCK:
        _CACHE[digest] = pattern
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return pattern


def _check_hierarchy_keys(hierarchies: Hierarchies | None, dimensions: tuple[Hashable, ...]) -> None:
    unknown = [key for key in (hierarchies or {}) if key not in dimensions]
    if unknown:
        raise ValueError(f"hierarchies names {unknown}, which are not dimensions of the table: {list(dimensions)}")


def _result(
    counts: pd.DataFrame | pd.Series | None,
    table: TableCells,
    values: np.ndarray,
    suppressed: np.ndarray,
    primary: np.ndarray,
    optimal: bool,
    seconds: float,
    policy: Policy,
) -> Suppression:
    as_frame = counts is None or isinstance(counts, pd.DataFrame)
    published = table.to_pandas(values, as_frame).astype("Int64")
    hidden = table.to_pandas(suppressed, as_frame).astype(bool)
    first = table.to_pandas(primary, as_frame).astype(bool)
    published = published.mask(hidden)
    if counts is not None:
        published, hidden, first = (_names_like(counts, x) for x in (published, hidden, first))
    second = hidden & ~first
    n_primary = int(np.asarray(first).sum())
    n_secondary = int(np.asarray(second).sum())
    return Suppression(published, first, second, suppression_note(n_primary, n_secondary, policy), optimal, seconds)


def suppression_note(primary: int, secondary: int, policy: Policy) -> str:
    """E.g. "3 cells suppressed: fewer than 10 records; 2 more to protect the totals"."""
    if not primary and not secondary:
        return ""
    if not primary:
        return f"{secondary} cell{'s' if secondary != 1 else ''} suppressed to protect the totals"
    text = f"{primary} cell{'s' if primary != 1 else ''} suppressed: fewer than {policy.threshold} records"
    return text + (f"; {secondary} more to protect the totals" if secondary else "")


def _names_like(counts: pd.DataFrame | pd.Series, result: pd.DataFrame | pd.Series):
    """Give the published table the input's axis names and Series name back."""
    if isinstance(counts, pd.DataFrame):
        result.index.name, result.columns.name = counts.index.name, counts.columns.name
    else:
        result.index = result.index.set_names(counts.index.names)
        result.name = counts.name
    return result


def _system_from_published(
    published: pd.DataFrame | pd.Series, hierarchies: Hierarchies | None, margins_name: str
) -> tuple[LinearSystem, np.ndarray, list[tuple[int, Hashable]]]:
    """The system behind a published table, its shown values and its suppressed cells' labels."""
    if isinstance(published, pd.DataFrame):
        axes = [published.index, published.columns]
        names = [_axis_name(published.index, "index"), _axis_name(published.columns, "columns")]
        entries = [
            ((r, c), published.iat[i, j])
            for i, r in enumerate(published.index)
            for j, c in enumerate(published.columns)
        ]
    elif isinstance(published, pd.Series):
        index = published.index
        axes = [index.get_level_values(i).unique() for i in range(index.nlevels)]
        names = [
            n if n is not None else (f"level_{i}" if index.nlevels > 1 else "index") for i, n in enumerate(index.names)
        ]
        entries = list(published.items())
    else:
        raise TypeError(f"attack needs a published DataFrame or Series, not {type(published).__name__}")
    hierarchies = hierarchies or {}
    _check_hierarchy_keys(hierarchies, tuple(names))
    categories = []
    for labels, name in zip(axes, names, strict=True):
        parents = set((hierarchies.get(name) or {}).values())
        if margins_name not in set(labels):
            raise ValueError(
                f"the published table has no {margins_name!r} margin on {name!r}; attack needs the table as "
                "protect returns it (inner cells and all margins)"
            )
        categories.append(pd.Index([x for x in labels if x != margins_name and x not in parents], name=name))
    shape = tuple(len(c) for c in categories)
    known_zero = None
    if isinstance(published, pd.Series) and isinstance(published.index, pd.MultiIndex):
        known_zero = np.ones(shape, dtype=bool)
        for key in published.index:
            try:
                known_zero[tuple(c.get_loc(k) for c, k in zip(categories, key, strict=True))] = False
            except KeyError:
                continue
    atoms = Atoms(tuple(names), tuple(categories), np.full(shape, np.nan), known_zero)
    dims = [Dimension(name, parents=hierarchies.get(name)) for name in names]
    table = table_cells(atoms, dims, margins_name=margins_name)
    index = _table_index(table)
    grand = next((v for key, v in entries if key == index[-1]), pd.NA)
    upper = float(grand) if not pd.isna(grand) else np.inf
    system = LinearSystem.link(atoms, [table], upper=upper)
    position_of = {key: i for i, key in enumerate(index)}
    shown = np.full(system.n_cells, np.nan)
    suppressed_labels = []
    for key, value in entries:
        if key not in position_of:
            raise ValueError(
                f"the published table has a label {key!r} that is neither a category, a parent nor {margins_name!r}"
            )
        cell = int(system.positions[0][position_of[key]])
        if pd.isna(value):
            suppressed_labels.append((cell, key))
        else:
            shown[cell] = float(value)
    return system, shown, suppressed_labels


def _table_index(table: TableCells) -> list[Hashable]:
    if len(table.axes) == 1:
        return list(table.axes[0].labels)
    return list(pd.MultiIndex.from_product([a.labels for a in table.axes]))


def _axis_name(index: pd.Index, default: str) -> Hashable:
    return index.name if index.name is not None else default
