"""Errors raised by the warehouse. Each names the thing at fault and what to do next."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class WarehouseError(Exception):
    """Base class of every warehouse error."""


class ElementSetError(WarehouseError):
    """An element-set file is missing or malformed."""


class UnknownInstitution(WarehouseError):
    """No institution has the given code."""


class UnknownTable(WarehouseError):
    """The table is not among the data elements (or not visible to the caller)."""


@dataclass(frozen=True)
class Problem:
    """One invalid value: 1-based data row (header excluded), column, value and rule."""

    row: int
    column: str
    value: str
    rule: str


class ProblemLog:
    """Collects invalid values: every one counted by (column, rule), the first ``keep`` kept."""

    def __init__(self, keep: int = 100):
        self.keep = keep
        self.first: list[Problem] = []
        self.counts: dict[tuple[str, str], int] = {}
        self.total = 0

    def extend(self, problems: list[Problem]) -> None:
        """Record problems (given in file order)."""
        for problem in problems:
            key = (problem.column, problem.rule)
            self.counts[key] = self.counts.get(key, 0) + 1
        self.total += len(problems)
        self.first.extend(problems[: max(self.keep - len(self.first), 0)])

    def __bool__(self) -> bool:
        return self.total > 0


class UploadRejected(WarehouseError):
    """The file was not loaded and nothing was written; ``problems`` says why, row by row."""

    def __init__(self, path: Path, message: str, problems: ProblemLog | None = None):
        self.path = path
        self.problems = problems or ProblemLog()
        super().__init__(f"{path}: {message}")

    def report(self) -> str:
        """The problems grouped by column and rule with counts, then the first ones in full."""
        log = self.problems
        if not log:
            return str(self)
        lines = [str(self), "By column and rule:"]
        for (column, rule), count in sorted(log.counts.items(), key=lambda item: -item[1]):
            lines.append(f"  {count:>9,}  {column}: {rule}")
        lines.append(f"First {len(log.first)} of {log.total:,} (rows count data lines, header excluded):")
        for p in log.first:
            lines.append(f"  row {p.row}, column {p.column}, value {p.value!r}: {p.rule}")
        return "\n".join(lines)
