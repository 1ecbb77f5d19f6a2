"""Numbers that cannot carry a mark: counts and statistics that must not be shown.

A reduction of record-level data called from user code — ``df[mask].shape[0]``,
``(df.x == v).sum()``, ``s.count()``, ``s.mean()`` — returns an ordinary number unless it would
disclose: a count the filter suppresses comes back as ``SmallCount`` (an ``int`` that prints
as the policy's mark and computes as the number it is), a statistic of fewer than threshold
records as ``Suppressed`` (a NaN that prints as the mark), a coded rate as ``Coded``. Each
carries the mark it prints as, so nothing here keeps a policy of its own.
"""

from __future__ import annotations

from output_filters.policy import Policy
from output_filters.rules import small, small_count


class SmallCount(int):
    """A count that is suppressed; shown as the mark, computed with as usual."""

    mark = "*"
    why = "a suppressed count"

    def __repr__(self) -> str:
        return f"{self.mark} (suppressed: {self.why})"

    def __str__(self) -> str:
        return self.mark

    def __format__(self, spec: str) -> str:
        return self.mark

    def __reduce__(self):
        return (_small_count, (int(self), self.mark, self.why))


def _small_count(value: int, mark: str, why: str) -> SmallCount:
    count = SmallCount(value)
    count.mark, count.why = mark, why
    return count


class Suppressed(float):
    """A statistic that must not be shown: missing (NaN), shown as the mark."""

    def __new__(cls, reason: str, mark: str = "*") -> Suppressed:
        value = super().__new__(cls, "nan")
        value.reason, value.mark = reason, mark
        return value

    def __repr__(self) -> str:
        return f"{self.mark} (suppressed: {self.reason})"

    def __str__(self) -> str:
        return self.mark

    def __format__(self, spec: str) -> str:
        return self.mark

    def __reduce__(self):
        return (Suppressed, (self.reason, self.mark))


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


def hidden_count(value: int, policy: Policy, why: str = "") -> SmallCount:
    """``value`` as a suppressed count."""
    reason = why or f"a count the filter suppresses (fewer than {policy.threshold} records, or it would give one away)"
    return _small_count(int(value), policy.mark, reason)


def count(value: int, policy: Policy) -> int:
    """``value`` as a count of records: a SmallCount if 0 < value < threshold."""
    value = int(value)
    if small_count(value, policy):
        return hidden_count(value, policy, f"a count of fewer than {policy.threshold} records")
    return value


def statistic(value, n: int, policy: Policy):
    """``value`` computed from ``n`` records: Suppressed if n < threshold."""
    if small(n, policy):
        return Suppressed(f"computed from fewer than {policy.threshold} records", policy.mark)
    return value
