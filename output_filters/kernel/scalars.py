"""Numbers that cannot carry a mark: small counts and suppressed statistics.

A reduction of record-level data called from user code — ``df[mask].shape[0]``,
``(df.x == v).sum()``, ``s.nunique()``, ``s.count()``, ``s.mean()`` — returns an ordinary
number unless it would disclose: a count with 0 < n < threshold comes back as ``SmallCount``
(an ``int`` that prints as the mark), a statistic of fewer than threshold records as
``Suppressed`` (a NaN that prints as the mark). ``len()`` must return a plain ``int``, so
small lengths go into a ledger instead, and the output gate blocks any output that shows one
of them (``output_filters.kernel.gate``): outputs of the cell that read it, and of later cells while a
variable of the notebook still holds it (``n = len(cell)`` in one cell, ``print(n)`` in the next).
"""

from __future__ import annotations

import re

from output_filters.policy import Policy

_OUTPUT_CACHE = re.compile(r"_{1,3}|_\d+")

_policy = Policy()
_ledger: set[int] = set()  # small lengths read by the running cell
_held: set[int] = set()  # small lengths still held by a variable after their cell


def configure(policy: Policy) -> None:
    global _policy
    _policy = policy


class SmallCount(int):
    """A count of fewer than threshold records; shown as the mark, computed with as usual."""

    def __repr__(self) -> str:
        return f"{_policy.mark} (suppressed: a count of fewer than {_policy.threshold} records)"

    def __str__(self) -> str:
        return _policy.mark

    def __format__(self, spec: str) -> str:
        return _policy.mark


class Suppressed(float):
    """A statistic of fewer than threshold records: missing (NaN), shown as the mark."""

    def __new__(cls, reason: str) -> Suppressed:
        value = super().__new__(cls, "nan")
        value.reason = reason
        return value

    def __repr__(self) -> str:
        return f"{_policy.mark} (suppressed: {self.reason})"

    def __str__(self) -> str:
        return _policy.mark

    def __format__(self, spec: str) -> str:
        return _policy.mark

    def __reduce__(self):
        return (Suppressed, (self.reason,))


class Coded(Suppressed):
    """A rate coded for a small group: missing (NaN), shown as its code such as "<5%"."""

    def __new__(cls, code: str, reason: str = "") -> Coded:
        value = super().__new__(cls, reason)
        value.code = code
        return value

    def __repr__(self) -> str:
        return f"{self.code} ({self.reason})" if self.reason else self.code

    def __str__(self) -> str:
        return self.code

    def __format__(self, spec: str) -> str:
        return self.code

    def __reduce__(self):
        return (Coded, (self.code, self.reason))


def count(value: int) -> int:
    """``value`` as a count of records: a SmallCount if 0 < value < threshold."""
    value = int(value)
    return SmallCount(value) if 0 < value < _policy.threshold else value


def statistic(value, n: int):
    """``value`` computed from ``n`` records: Suppressed if n < threshold."""
    if n < _policy.threshold:
        return Suppressed(f"computed from fewer than {_policy.threshold} records")
    return value


def remember_length(n: int) -> None:
    """Note a small len() of record-level data read by the running cell."""
    if 0 < n < _policy.threshold:
        _ledger.add(n)


def small_lengths() -> frozenset[int]:
    return frozenset(_ledger | _held)


def end_cell(namespace: dict) -> None:
    """Keep the small lengths that a variable the researcher named still holds.

    IPython's output cache (``_``, ``__``, ``_5``, ``Out``) is not counted: a result that
    was shown was already checked, and counting the cache would block every later output
    that happens to contain the same small number.
    """
    candidates = _ledger | _held
    _held.clear()
    if candidates:
        _held.update(
            value
            for name, value in namespace.items()
            if type(value) is int and value in candidates and not _OUTPUT_CACHE.fullmatch(name)
        )


def new_cell() -> None:
    _ledger.clear()
