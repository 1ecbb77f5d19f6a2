"""Tables the attacker could not rule out, kept to skip LPs while searching for a pattern.

Every optimum of an attacker LP is a table of non-negative counts that adds up to every
published cell. If it moves (differs from the truth in) only cells that a later pattern
also suppresses, it is still such a table under that pattern: every requirement it reached
is still met, with no LP. Patterns in a search differ by a few cells, so most requirements
of most patterns are settled here.

The pool is bounded (oldest dropped first) and filled in a fixed order, so it is the same
in every run of the same search.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

LIMIT = 20_000  # witnesses kept; each costs its moved cells and the requirements it meets


class Witnesses:
    """Witness tables as two sparse 0/1 matrices: cells each one moved, requirements it met."""

    def __init__(self, n_cells: int, n_requirements: int) -> None:
        self.n_cells = n_cells
        self.n_requirements = n_requirements
        self._moved: list[np.ndarray] = []
        self._reached: list[np.ndarray] = []
        self._blocks: list[tuple[sp.csr_array, sp.csc_array]] = []

    def __len__(self) -> int:
        return len(self._moved) + sum(moved.shape[0] for moved, _ in self._blocks)

    def add(self, moved: np.ndarray, reached: np.ndarray) -> None:
        """Keep a table that moved cells ``moved`` and met the requirements ``reached`` (a mask)."""
        if reached.any():
            self._moved.append(np.asarray(moved, dtype=np.int32))
            self._reached.append(np.flatnonzero(reached).astype(np.int32))

    def met(self, suppressed: np.ndarray) -> np.ndarray:
        """Requirements (a mask) met by a kept table that moves only cells of ``suppressed``."""
        self._flush()
        met = np.zeros(self.n_requirements, dtype=bool)
        published = (~np.asarray(suppressed, dtype=bool)).astype(np.int32)
        for moved, reached in self._blocks:
            valid = (moved @ published) == 0
            if valid.any():
                met |= (reached.T @ valid.astype(np.int32)) > 0
        return met

    def _flush(self) -> None:
        """Turn the tables added since the last call into one block of the two matrices."""
        if not self._moved:
            return
        moved = _rows(self._moved, self.n_cells)
        reached = sp.csc_array(_rows(self._reached, self.n_requirements))
        self._blocks.append((moved, reached))
        self._moved, self._reached = [], []
        # a few large products are faster than many small ones
        while len(self._blocks) > 1 and self._blocks[-1][0].shape[0] * 4 > self._blocks[-2][0].shape[0]:
            (m2, r2), (m1, r1) = self._blocks.pop(), self._blocks.pop()
            self._blocks.append((sp.vstack([m1, m2], format="csr"), sp.vstack([r1, r2], format="csc")))
        if len(self) > LIMIT:  # keep the newest half
            moved = sp.vstack([m for m, _ in self._blocks], format="csr")
            reached = sp.vstack([r for _, r in self._blocks], format="csr")
            keep = slice(moved.shape[0] - LIMIT // 2, moved.shape[0])
            self._blocks = [(sp.csr_array(moved[keep]), sp.csc_array(reached[keep]))]


def _rows(rows: list[np.ndarray], width: int) -> sp.csr_array:
    """A 0/1 CSR matrix whose row i has ones at ``rows[i]``."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int32)
    data = np.ones(len(indices), dtype=np.int32)
    return sp.csr_array((data, indices, indptr), shape=(len(rows), width))
