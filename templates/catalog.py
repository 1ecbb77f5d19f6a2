"""What the running account may report on: institutions and years of its approved uses.

The runner checks a report's parameters against this before any kernel starts. It reads only
the extracts the account's approved uses give it (``warehouse.workspace``: the same files its
kernels read, two columns of each), never the warehouse database, so a report author gets the
same answer from ``enclave report`` and from their own kernel, and an institution outside their
uses is refused as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from warehouse.elements import available_years, load_element_set
from warehouse.institutions import SEGMENTS
from warehouse.workspace import Workspace, current_user


@dataclass(frozen=True)
class Catalog:
    """Institutions (code -> segment) and the years each table holds, as this account sees them."""

    segments: dict[str, str]
    years: dict[str, set[str]]  # table -> academic years present
    user: str | None
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> institution -> records

    def segment_of(self, code: str) -> str | None:
        return self.segments.get(code)

    def codes(self, segment: str | None = None) -> list[str]:
        return sorted(c for c, s in self.segments.items() if segment is None or s == segment)

    def describe(self, segment: str | None = None) -> str:
        codes = self.codes(segment)
        return ", ".join(codes) if codes else "none"


def table_segments() -> dict[str, str]:
    """Each data table's segment, from the newest element set."""
    newest = load_element_set(available_years()[-1])
    return {name: table.segment for name, table in newest.tables.items()}


def read_catalog(workspace: Workspace | None = None) -> Catalog:
    """The catalog of a workspace (default: the uses of the account this process works for)."""
    workspace = Workspace(current_user()) if workspace is None else workspace
    kinds = table_segments()
    segments: dict[str, str] = {}
    years: dict[str, set[str]] = {}
    rows: dict[str, dict[str, int]] = {}
    for table in workspace.tables():
        frame = workspace.load(table, ["institution", "year"])
        years[table] = set(frame["year"].unique().tolist())
        rows[table] = {str(code): int(n) for code, n in frame["institution"].value_counts().items()}
        segment = kinds.get(table)
        if segment in SEGMENTS:
            for code in frame["institution"].unique().tolist():
                segments.setdefault(str(code), segment)
    return Catalog(segments, years, workspace.user, rows)
