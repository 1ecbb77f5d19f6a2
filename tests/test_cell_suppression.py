"""The secondary-suppression engine (output_filters.engine.cell_suppression), on linear systems.

- ``suppress_system`` with cells an earlier output decided (``shown``, ``hidden``), the
  ``relaxed`` record of requirements no pattern can meet, and systems with consistency rows
  (−1/+1 rows between two blocks of atoms, whose value is 0);
- local certification (``output_filters.engine.regions``): which systems get regions, that a
  region's certifying table moves only its region and is a table of counts that adds up,
  and that publishing a cell again keeps the witnesses of the other regions;
- determinism: a table's pattern is a pure function of the table and the policy, the same in
  other processes, on a quiet machine and under CPU load on both cores, and the same when the
  work budget cuts the search short.

Every pattern is checked by an attacker written here (``scipy.optimize.linprog`` over the
system's atoms), independent of ``output_filters.engine.attack``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from output_filters import Policy, protect
from output_filters.engine import secondary
from output_filters.engine.cell_suppression import Pattern, suppress_system
from output_filters.engine.linear_system import Dimension, LinearSystem, atoms_from_counts, table_cells
from output_filters.engine.problem import Problem
from output_filters.engine.regions import Geometry

ROOT = Path(__file__).resolve().parents[1]
POLICY = Policy()


# ---- an independent attacker -------------------------------------------------------------------


def attacker_intervals(system: LinearSystem, suppressed: np.ndarray, floor: float = 1.0) -> dict[int, tuple]:
    """(low, high) of every suppressed cell: LPs over the atoms, published cells fixed."""
    matrix = sp.csr_array(system.matrix).toarray()
    values = matrix @ system.atom_values
    published = ~suppressed
    hidden = np.flatnonzero(suppressed)
    lows = np.where(values[hidden] > 0, floor, 0.0)
    a_ub = np.vstack([matrix[hidden], -matrix[hidden]])
    b_ub = np.concatenate([np.full(len(hidden), system.upper), -lows])
    bounds = list(zip(np.zeros(matrix.shape[1]), system.atom_upper, strict=True))
    intervals = {}
    for cell in hidden:
        ends = []
        for sign in (1.0, -1.0):
            result = linprog(
                sign * matrix[cell], A_ub=a_ub, b_ub=b_ub, A_eq=matrix[published], b_eq=values[published], bounds=bounds
            )
            assert result.status == 0, result.message
            ends.append(sign * result.fun)
        intervals[int(cell)] = tuple(ends)
    return intervals


def failures(system: LinearSystem, pattern: Pattern, floor: float = 1.0) -> list[str]:
    """Primaries of ``pattern`` the independent attacker narrows below FREQ(10, 30)'s room."""
    values = system.cell_values
    relaxed = {(cell, up): target for cell, up, _, target in pattern.relaxed}
    failed = []
    for cell, (low, high) in attacker_intervals(system, pattern.suppressed, floor).items():
        v = values[cell]
        if not pattern.primary[cell]:
            continue
        level = max(1, math.ceil(0.3 * v - 1e-9))
        below = relaxed.get((cell, False), v - min(level, v - floor))
        above = relaxed.get((cell, True), v + min(level, system.upper - v))
        if low > below + 1e-6 or high < above - 1e-6:
            failed.append(f"cell {cell} = {v:g}: [{low:g}, {high:g}]")
    return failed


def system_of(values) -> LinearSystem:
    values = np.asarray(values)
    counts = pd.DataFrame(values, index=[f"r{i}" for i in range(values.shape[0])])
    counts.columns = [f"c{j}" for j in range(values.shape[1])]
    atoms = atoms_from_counts(counts.astype(float))
    return LinearSystem.link(atoms, [table_cells(atoms, list(atoms.dimensions))])


def two_copies(system: LinearSystem) -> LinearSystem:
    """The system's atoms twice, joined by rows "margin in copy 1 − margin in copy 2 = 0"."""
    one = sp.csr_array(system.matrix)
    n_cells, n_atoms = one.shape
    sizes = np.diff(one.indptr)
    margins = np.flatnonzero(sizes > 1)
    joins = sp.hstack([one[margins], -one[margins]])
    matrix = sp.csr_array(sp.vstack([sp.block_diag([one, one]), joins], format="csr"))
    shifted = [(total + n_cells, tuple(p + n_cells for p in parts)) for total, parts in system.equations]
    return LinearSystem(
        matrix,
        np.concatenate([system.atom_values, system.atom_values]),
        np.concatenate([system.atom_upper, system.atom_upper]),
        tuple(system.equations) + tuple(shifted),
        system.tables * 2,
        (np.arange(n_cells), np.arange(n_cells) + n_cells),
        system.upper,
    )


RECTANGLE = [[5, 40, 50], [30, 60, 70], [45, 80, 90]]  # one small cell: its cheapest rectangle is unique


# ---- the interface for linked tables ------------------------------------------------------------


def test_a_system_without_fixed_cells_is_protected_as_protect_does():
    system = system_of(RECTANGLE)
    pattern = suppress_system(system, POLICY)
    assert pattern.method == "exact" and pattern.relaxed == ()
    assert int(pattern.suppressed.sum()) == 4 and int(pattern.primary.sum()) == 1
    assert failures(system, pattern) == []


def test_shown_cells_are_never_chosen_and_hidden_cells_stay_suppressed():
    system = system_of(RECTANGLE)
    alone = suppress_system(system, POLICY)
    partners = np.flatnonzero(alone.suppressed & ~alone.primary)
    shown = np.zeros(system.n_cells, dtype=bool)
    shown[partners[0]] = True  # published earlier: the cheapest rectangle is no longer possible
    hidden = np.zeros(system.n_cells, dtype=bool)
    hidden[np.flatnonzero(system.cell_values == 90)[0]] = True  # suppressed earlier, not small
    pattern = suppress_system(system, POLICY, shown=shown, hidden=hidden)
    assert not (pattern.suppressed & shown).any()
    assert pattern.suppressed[hidden].all()
    assert not pattern.primary[hidden].any()  # hidden is not primary: it needs no room of its own
    assert pattern.relaxed == ()
    assert failures(system, pattern) == []


def test_a_primary_no_pattern_can_protect_is_reported_relaxed():
    system = system_of(RECTANGLE)
    small = int(np.flatnonzero(system.cell_values == 5)[0])
    shown = np.zeros(system.n_cells, dtype=bool)
    # every other cell of the small cell's row published earlier: its row total gives it away
    row = next(line for line in system.equations if small in line[1] and len(line[1]) == 3)
    shown[[row[0], *[c for c in row[1] if c != small]]] = True
    pattern = suppress_system(system, POLICY, shown=shown)
    assert pattern.suppressed[small] and not (pattern.suppressed & shown).any()
    relaxed = {(cell, up): (original, target) for cell, up, original, target in pattern.relaxed}
    assert relaxed == {(small, True): (7.0, 5.0), (small, False): (3.0, 5.0)}
    assert failures(system, pattern) == []


def test_a_small_cell_shown_earlier_is_reported_not_protected():
    system = system_of(RECTANGLE)
    small = int(np.flatnonzero(system.cell_values == 5)[0])
    shown = np.zeros(system.n_cells, dtype=bool)
    shown[small] = True
    pattern = suppress_system(system, POLICY, shown=shown)
    assert not pattern.suppressed.any() and not pattern.primary.any()
    assert pattern.relaxed == ((small, False, 3.0, 5.0), (small, True, 7.0, 5.0))


def test_unpublished_cells_are_suppressed_and_their_small_ones_protected_without_a_floor():
    # the second copy of the table is only implied (never shown): its cells are hidden by
    # construction, a suppressed cell there may be 0 for the attacker, and its small cells
    # need their room like any primary
    one = system_of(RECTANGLE)
    both = two_copies(one)
    unpublished = np.zeros(both.n_cells, dtype=bool)
    unpublished[one.n_cells : 2 * one.n_cells] = True
    pattern = suppress_system(both, POLICY, unpublished=unpublished)
    assert pattern.suppressed[unpublished].all()
    small = np.flatnonzero(unpublished & (both.cell_values == 5))
    assert pattern.primary[small].all()
    assert failures(both, pattern, floor=0.0) == []


def test_a_linked_table_that_needs_no_more_cells_keeps_the_cells_it_was_given():
    system = system_of(RECTANGLE)
    alone = suppress_system(system, POLICY)
    hidden = alone.suppressed & ~alone.primary  # an earlier output's choice, already enough
    pattern = suppress_system(system, POLICY, hidden=hidden)
    assert pattern.method == "exact"
    assert (pattern.suppressed == alone.suppressed).all()
    assert failures(system, pattern) == []


@pytest.mark.parametrize(
    "masks, problem",
    [
        ({"shown": np.ones(3, dtype=bool)}, "boolean mask over the system's 16 cells"),
        ({"hidden": np.zeros(16, dtype=int)}, "boolean mask"),
        ({"shown": np.eye(16, dtype=bool)[0], "hidden": np.eye(16, dtype=bool)[0]}, "both shown and hidden"),
        ({"unpublished": np.ones(15, dtype=bool)}, "unpublished must be a boolean mask over the system's 16"),
        (
            {"shown": np.eye(16, dtype=bool)[3], "unpublished": np.eye(16, dtype=bool)[3]},
            r"cells \[3\] are both shown and unpublished",
        ),
    ],
    ids=["wrong length", "not boolean", "both", "unpublished of the wrong length", "shown and unpublished"],
)
def test_bad_masks_are_refused_with_the_reason(masks, problem):
    with pytest.raises(ValueError, match=problem):
        suppress_system(system_of(RECTANGLE), POLICY, **masks)


@pytest.mark.parametrize(
    "values",
    [RECTANGLE, [[3, 14, 22, 40], [25, 7, 31, 18], [12, 26, 4, 33], [41, 19, 28, 2]]],
    ids=["one small cell", "four small cells"],
)
def test_consistency_rows_between_two_copies_change_no_protection(values):
    one = system_of(values)
    alone = suppress_system(one, POLICY)
    both = two_copies(one)
    joins = np.arange(2 * one.n_cells, both.n_cells)
    assert (both.cell_values[joins] == 0).all() and (both.matrix.data == -1).any()
    pattern = suppress_system(both, POLICY)
    assert pattern.optimal and not pattern.suppressed[joins].any()
    assert int(pattern.suppressed.sum()) == 2 * int(alone.suppressed.sum())
    if len(values) == 3:  # a unique optimum: the same cells in each copy
        for copy in (slice(0, one.n_cells), slice(one.n_cells, 2 * one.n_cells)):
            assert (pattern.suppressed[copy] == alone.suppressed).all()
    assert failures(both, pattern) == []


# ---- determinism ----------------------------------------------------------------------------------


def random_counts(seed: int, shape: tuple[int, ...], share: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.integers(10, 200, size=shape)
    small = rng.random(shape) < share
    values[small] = rng.integers(1, 10, size=small.sum())
    values[rng.random(shape) < 0.05] = 0
    return values


def test_a_search_cut_by_the_budget_returns_the_same_pattern_every_time():
    values = random_counts(1, (20, 8, 3))
    index = pd.MultiIndex.from_product([range(n) for n in values.shape], names=["a", "b", "c"])
    atoms = atoms_from_counts(pd.Series(values.ravel(), index=index).astype(float))
    system = LinearSystem.link(atoms, [table_cells(atoms, list(atoms.dimensions))])
    policy = Policy(suppression_work=3000)
    patterns = [suppress_system(system, policy) for _ in range(3)]
    assert {p.method for p in patterns} == {"best found"}  # the budget cut every one of them
    assert all((p.suppressed == patterns[0].suppressed).all() for p in patterns)
    assert len({p.work for p in patterns}) == 1
    assert failures(system, patterns[0]) == []


# ---- local certification ------------------------------------------------------------------------


def three_way(seed: int, shape: tuple[int, ...], share: float = 0.3) -> LinearSystem:
    values = random_counts(seed, shape, share)
    index = pd.MultiIndex.from_product([range(n) for n in values.shape], names=["a", "b", "c"])
    atoms = atoms_from_counts(pd.Series(values.ravel(), index=index).astype(float))
    return LinearSystem.link(atoms, [table_cells(atoms, list(atoms.dimensions))])


def test_only_a_single_table_with_all_its_margins_gets_regions():
    system = three_way(0, (12, 4, 3))
    geometry = Geometry.of(system)
    assert geometry is not None and geometry.shape == (13, 5, 4)
    blocks = geometry.blocks(4)
    assert len(blocks) == 3  # 12 categories of the longest axis, 4 by 4
    members = np.sum([m for _, m in blocks], axis=0)
    totals = system.cell_values == system.cell_values.max()
    assert members.max() == 1 and members.sum() == system.n_cells - 5 * 4  # all but the axis' total slice
    assert all(region[totals].all() for region, _ in blocks)  # every region has the grand total
    assert Geometry.of(two_copies(system_of(RECTANGLE))) is None  # two tables, consistency rows
    segment = {f"s{i}": ("university" if i < 3 else "college") for i in range(6)}
    frame = pd.DataFrame(random_counts(4, (6, 3)), index=pd.Index(list(segment), name="school"))
    atoms = atoms_from_counts(frame.astype(float))
    school = Dimension("school", parents=segment)
    nested = LinearSystem.link(atoms, [table_cells(atoms, [school, atoms.dimensions[1]])])
    assert Geometry.of(nested) is None  # subtotals: not one hypercube


def test_a_regions_table_moves_only_its_region_and_is_one_the_attacker_cannot_rule_out():
    system = three_way(0, (12, 4, 3))
    problem = Problem(system, 10, 0.3, True)
    pattern = suppress_system(system, POLICY)
    problem.attacker.set_pattern(pattern.suppressed)
    matrix = sp.csr_array(system.matrix)
    single = np.flatnonzero(np.diff(matrix.indptr) == 1)
    reached = 0
    for region, members in problem.regions:
        for maximize in (True, False):
            group = np.flatnonzero(members[problem.cells] & ((problem.sign > 0) == maximize))
            if not len(group):
                continue
            table = problem.attacker.certify(problem.cells[group], problem.targets[group], maximize, pinned=~region)
            moved = np.zeros(system.n_cells, dtype=bool)
            moved[problem.moved(table)] = True
            assert not (moved & ~region).any()  # it moves cells of its region only
            assert not (moved & ~pattern.suppressed).any()  # published cells keep their values
            # a table of non-negative counts that adds up: every cell the sum of its inner cells
            atoms = np.zeros(matrix.shape[1])
            atoms[matrix.indices[matrix.indptr[single]]] = table[single]
            assert np.allclose(matrix @ atoms, table) and atoms.min() >= -1e-6
            assert (table >= 1 - 1e-6)[pattern.suppressed & (system.cell_values > 0)].all()
            assert table.max() <= system.upper + 1e-6
            reached += int(problem.reached(table)[group].sum())
    assert reached > 0  # some are met within their own region


def test_publishing_one_cell_again_keeps_the_witnesses_of_other_regions():
    system = three_way(0, (24, 4, 3))
    pattern = suppress_system(system, POLICY).suppressed
    kept = []
    for local in (True, False):
        problem = Problem(system, 10, 0.3, True)
        if not local:
            problem.regions = []  # every requirement certified over the whole table
        assert problem.audit(pattern) == []
        first_block = Geometry.of(system).blocks(4)[0][1]
        secondary = np.flatnonzero(pattern & problem.eligible & first_block)
        trial = pattern.copy()
        trial[secondary[0]] = False  # one cell of the first block published again
        kept.append(int(problem.witnesses.met(trial)[~first_block[problem.cells]].sum()))
    # requirements of the other blocks keep their witnesses (no LP for them next time); with
    # the whole table certified at once, hardly any do
    assert kept[0] > 10 and kept[0] > 3 * kept[1], kept


CHILD = textwrap.dedent(
    """
    import hashlib, json, sys
    import numpy as np, pandas as pd
    from output_filters import protect

    def counts(seed, shape, share=0.2):
        rng = np.random.default_rng(seed)
        values = rng.integers(10, 200, size=shape)
        small = rng.random(shape) < share
        values[small] = rng.integers(1, 10, size=small.sum())
        values[rng.random(shape) < 0.05] = 0
        return values

    two = counts(2, (20, 8))
    three = counts(3, (20, 8, 3))
    index = pd.MultiIndex.from_product([[f"i{i}" for i in range(20)], range(8), ["a", "b", "c"]])
    segment = {f"s{i}": ("university" if i < 3 else "college") for i in range(12)}
    nested = counts(4, (12, 6))
    tables = {
        "2-D": protect(pd.DataFrame(two)),
        "3-D": protect(pd.Series(three.ravel(), index=index)),
        "hierarchical": protect(
            pd.DataFrame(nested, index=pd.Index(list(segment), name="school")), hierarchies={"school": segment}
        ),
    }
    print(json.dumps({name: [t.table.to_json(), t.optimal] for name, t in tables.items()}))
    """
)
# a bounded busy loop (5 minutes at most), killed as soon as the loaded runs are done
BUSY = "import time\nprint('busy', flush=True)\nend = time.monotonic() + 300\nwhile time.monotonic() < end:\n    pass\n"


def protect_in_a_new_process(policy_file: Path) -> subprocess.Popen:
    env = dict(os.environ, ENCLAVE_POLICY=str(policy_file), PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def outcome(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]
    return json.loads(out)


@pytest.mark.parametrize("work", [3000, POLICY.suppression_work], ids=["a budget that cuts", "the default budget"])
def test_the_same_tables_get_the_same_patterns_in_other_processes_and_under_load(tmp_path, work):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(f"[disclosure]\nsuppression_work = {work}\n")
    quiet = [outcome(protect_in_a_new_process(policy_file)) for _ in range(2)]
    busy = [subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for loop in busy:
            assert loop.stdout.readline().strip() == "busy"  # both cores are busy from here on
        loaded = [protect_in_a_new_process(policy_file) for _ in range(2)]
        under_load = [outcome(process) for process in loaded]
    finally:
        for loop in busy:
            loop.kill()
            loop.wait()
    for run in quiet[1:] + under_load:
        assert run == quiet[0]  # byte for byte: every published cell, every suppression
    if work == 3000:
        assert not all(optimal for _, optimal in quiet[0].values())  # the budget did cut a search


def test_protect_without_a_policy_uses_the_consortiums_policy_file(tmp_path, monkeypatch):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text("[disclosure]\nthreshold = 5\n")
    monkeypatch.setenv("ENCLAVE_POLICY", str(policy_file))
    secondary._CACHE.clear()
    counts = pd.DataFrame([[7, 40, 50], [30, 60, 70], [45, 80, 90]])
    assert not protect(counts).table.isna().any().any()  # 7 is not small under this policy
    assert int(protect(counts, Policy()).table.isna().to_numpy().sum()) == 4
