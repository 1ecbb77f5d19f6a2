"""What a research kernel may read: its user's uses, combined into one table per name.

A kernel's user is decided by the system account it runs as (``warehouse.identity``), never
by an environment variable that cell code could change, and a kernel never opens the
warehouse database. Its uses are the extracts whose manifest lists the user and whose files
the process can read. The operator's own account (an administrator's ``enclave report run``,
the test suite) reads every extract it can; a process that works for no one reads none.

Names (what ``kernels.data`` offers):

- ``use/table``: one use's extract, every column it grants.
- ``table``: every row of the table you may see, from all your uses together. An
  institution's rows appear once, even when several uses include it (from the use granting
  the most columns). The columns are those every contributing use grants (the intersection),
  so no column is silently empty for some institutions; a column only some uses grant is
  refused with the ``use/table`` name that has it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from warehouse import identity
from warehouse.exceptions import UnknownTable
from warehouse.extracts import Manifest, extract_names, read_manifest
from warehouse.schema import DATA_TABLES
from warehouse.settings import var_dir


def current_user() -> str | None:
    """The user whose uses this process shows (None: the operator, every readable extract)."""
    return identity.current_user()


def _readable(path) -> bool:
    return os.access(path, os.R_OK)


def visible_uses(user: str | None) -> list[Manifest]:
    """The extracts ``user`` may read (None: every extract this process can read)."""
    root = var_dir() / "uses"
    found = []
    for name in extract_names(root):
        try:
            manifest = read_manifest(name, root)
        except (OSError, ValueError, KeyError):
            continue  # unreadable (another use's group), or being replaced right now
        if user is not None and user not in manifest.users:
            continue
        if all(_readable(manifest.file(t)) for t in manifest.tables):
            found.append(manifest)
    return found


@dataclass(frozen=True)
class Part:
    """Rows of one table from one use: all of them, or only some institutions'."""

    manifest: Manifest
    institutions: tuple[str, ...] | None  # None: every row of the use's file


class Workspace:
    """The tables of one user's uses, as ``kernels.data`` shows them."""

    def __init__(self, user: str | None = None, uses: list[Manifest] | None = None):
        self.user = user
        self.uses = visible_uses(user) if uses is None else uses

    def tables(self) -> list[str]:
        """Plain table names, in the order of the data flow."""
        names = {t for m in self.uses for t in m.tables}
        return [t for t in DATA_TABLES if t in names] + sorted(names - set(DATA_TABLES))

    def use_names(self) -> list[str]:
        return [m.name for m in self.uses]

    def columns(self, name: str) -> list[str]:
        return list(self._resolve(name)[0])

    def load(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """The rows of ``name`` (``table`` or ``use/table``), only ``columns`` if given.

        The index holds each row's record id (``record_id``, ``warehouse.extracts.record_ids``):
        the same row has the same id in every load, whichever columns or uses it comes from, so
        the output filter can tell which loads and subsets count the same records.
        """
        available, parts, table = self._resolve(name)
        wanted = list(available) if columns is None else list(columns)
        missing = [c for c in wanted if c not in available]
        if missing:
            raise UnknownTable(self._missing_message(name, table, missing, available))
        frames = []
        for part in parts:
            path = part.manifest.file(table)
            read = wanted if part.institutions is None or "institution" in wanted else [*wanted, "institution"]
            frame = pd.read_parquet(path, columns=read)
            if part.institutions is not None:
                frame = frame[frame["institution"].isin(part.institutions)][wanted]
            frames.append(frame)
        return frames[0] if len(frames) == 1 else pd.concat(frames)

    # ---- resolution ----------------------------------------------------------------------

    def _resolve(self, name: str) -> tuple[tuple[str, ...], list[Part], str]:
        """(columns, parts, table) of a name; raise UnknownTable naming what exists."""
        use, _, table = name.rpartition("/")
        if use:
            manifest = next((m for m in self.uses if m.name == use), None)
            if manifest is None:
                raise UnknownTable(f"you have no use named {use!r}; your uses: {self._listing()}")
            if table not in manifest.tables:
                raise UnknownTable(f"use {use} has no table {table!r}; its tables: {', '.join(manifest.tables)}")
            return manifest.tables[table], [Part(manifest, None)], table
        granting = [m for m in self.uses if table in m.tables]
        if not granting:
            mine = ", ".join(self.tables()) or "none"
            raise UnknownTable(
                f"no table {table!r} in your approved uses; your tables: {mine}. An administrator "
                "grants uses (`enclave use grant USE USER`)"
            )
        # Each institution's rows from one use: the one granting the most columns of them.
        chosen: dict[str, Manifest] = {}
        for manifest in granting:
            for code in manifest.institutions:
                best = chosen.get(code)
                if best is None or _rank(manifest, table) < _rank(best, table):
                    chosen[code] = manifest
        parts = []
        for manifest in granting:
            codes = tuple(c for c, m in chosen.items() if m is manifest)
            if codes:
                whole = set(codes) == set(manifest.institutions)
                parts.append(Part(manifest, None if whole else codes))
        shared = set.intersection(*(set(p.manifest.tables[table]) for p in parts))
        columns = tuple(c for c in parts[0].manifest.tables[table] if c in shared)
        return columns, parts, table

    def _missing_message(self, name: str, table: str, missing: list[str], available: tuple[str, ...]) -> str:
        if table not in DATA_TABLES or "/" in name:
            return f"{name} has no column(s) {', '.join(map(repr, missing))}; its columns are: {', '.join(available)}"
        elsewhere = [m.name for m in self.uses if table in m.tables and set(missing) <= set(m.tables[table])]
        hint = ""
        if elsewhere:
            hint = f"; only some of your uses grant them: load {' or '.join(f'{u}/{table}' for u in elsewhere)}"
        return (
            f"{table} has no column(s) {', '.join(map(repr, missing))} in all of your uses that hold it{hint}; "
            f"its columns are: {', '.join(available)}"
        )

    def _listing(self) -> str:
        return ", ".join(self.use_names()) or "none"


def _rank(manifest: Manifest, table: str) -> tuple[int, int, str]:
    """Smaller is preferred: more columns, then more institutions (fewer files), then name."""
    return (-len(manifest.tables[table]), -len(manifest.institutions), manifest.name)
