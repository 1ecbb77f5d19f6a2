"""The extract of an approved use: only its elements and institutions, as Parquet files.

Research kernels never open the warehouse database; they read extracts. Layout, under
``var/uses`` (mode 755, so a kernel can list the uses):

```
var/uses/<NAME>                 symlink to the current version, swapped atomically
var/uses/.<NAME>.<token>/       one version: mode 750, meant to be owned by a per-use group
    manifest.json               mode 640: use, kind, purpose, institutions, users, tables
    <table>.parquet             mode 640: the table's granted columns, granted institutions
var/uses/.lock                  refreshes take turns on it (flock)
```

A refresh writes a complete new version into a fresh hidden directory, then replaces the
symlink with ``rename(2)`` and deletes older versions: a reader sees the old extract or the
new one, never a mix, and a refresh that fails leaves the old one in place. Tables whose
rows did not change are hard links to the previous version's files, so a change of grants
or of one table is cheap. A kernel resolves the symlink once and reads the manifest and the
files from that version.

When user servers run as separate system users, a per-use system group owns each version
directory (750) and its files (640), the granted users are its members, and var/ becomes
traversable (711); the manifest's ``users`` then tells a kernel which of the uses it can read
are its user's (``warehouse.workspace``).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, select

from warehouse.read import typed
from warehouse.schema import DATA_TABLES
from warehouse.settings import state_path

MANIFEST = "manifest.json"
FORMAT = 1
DIR_MODE = 0o750
FILE_MODE = 0o640
ROOT_MODE = 0o755
CHUNK_ROWS = 200_000
KINDS = ("approved", "own")


@dataclass(frozen=True)
class ExtractSpec:
    """What one use's extract must hold."""

    name: str
    kind: str  # approved: made by `enclave use add`; own: an institution's own data
    purpose: str
    tables: dict[str, tuple[str, ...]]  # table -> columns, institution and year first
    institutions: tuple[str, ...]
    users: tuple[str, ...]


@dataclass(frozen=True)
class Manifest:
    """A published extract, as a kernel reads it."""

    name: str
    kind: str
    purpose: str
    tables: dict[str, tuple[str, ...]]
    rows: dict[str, int]
    institutions: tuple[str, ...]
    users: tuple[str, ...]
    refreshed_at: str
    directory: Path = field(compare=False)

    def file(self, table: str) -> Path:
        return self.directory / f"{table}.parquet"


def uses_root() -> Path:
    """``var/uses``, created on first use."""
    root = state_path("uses", MANIFEST).parent
    if root.stat().st_mode & 0o777 != ROOT_MODE:
        root.chmod(ROOT_MODE)
    return root


def extract_names(root: Path | None = None) -> list[str]:
    """Names of the published extracts."""
    root = uses_root() if root is None else root
    if not root.is_dir():
        return []
    # A plain directory counts too: copying var/ without keeping symlinks (cp -r, a restore,
    # shutil.copytree) turns each link into a copy of its version.
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and p.is_dir())


def read_manifest(name: str, root: Path | None = None) -> Manifest:
    """The current manifest of use ``name`` (FileNotFoundError if none, PermissionError if unreadable)."""
    root = uses_root() if root is None else root
    directory = Path(os.path.realpath(root / name))
    data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    if data.get("format") != FORMAT:
        raise ValueError(f"{directory / MANIFEST}: unknown manifest format {data.get('format')!r}")
    return Manifest(
        name=data["use"],
        kind=data["kind"],
        purpose=data["purpose"],
        tables={t: tuple(spec["columns"]) for t, spec in data["tables"].items()},
        rows={t: int(spec["rows"]) for t, spec in data["tables"].items()},
        institutions=tuple(data["institutions"]),
        users=tuple(data["users"]),
        refreshed_at=data["refreshed_at"],
        directory=directory,
    )


def publish(
    engine: Engine,
    spec: ExtractSpec,
    *,
    changed: Collection[str] | None = None,
    progress: Callable[[str], None] = lambda _table: None,
) -> Manifest:
    """Write ``spec``'s extract as a new version and make it current, atomically.

    ``changed`` names the tables whose rows may have changed (None: all); the others are
    linked from the current version when it holds them with the same columns and
    institutions. ``progress(table)`` is called after each table.
    """
    root = uses_root()
    with _locked(root):
        try:
            previous = read_manifest(spec.name, root)
        except (FileNotFoundError, ValueError):
            previous = None
        work = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=root))
        try:
            work.chmod(DIR_MODE)
            rows = {}
            for table, columns in spec.tables.items():
                target = work / f"{table}.parquet"
                reusable = (
                    previous is not None
                    and changed is not None
                    and table not in changed
                    and previous.tables.get(table) == columns
                    and previous.institutions == spec.institutions
                )
                if reusable:
                    os.link(previous.file(table), target)
                    rows[table] = previous.rows[table]
                else:
                    rows[table] = _write_table(engine, table, columns, spec.institutions, target)
                    target.chmod(FILE_MODE)
                progress(table)
            _write_manifest(work, spec, rows)
            _swap(root, spec.name, work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        _remove_versions(root, spec.name, keep=work.name)
    return read_manifest(spec.name, root)


def remove(name: str) -> bool:
    """Delete use ``name``'s extract (every version); False if there was none."""
    root = uses_root()
    with _locked(root):
        link = root / name
        existed = link.is_symlink() or link.is_dir()
        if link.is_symlink():
            link.unlink()
        elif existed:
            shutil.rmtree(link)
        _remove_versions(root, name, keep=None)
    return existed


RECORD_ID = "record_id"
_ID_BASE = 1 << 62  # every record id is in [2**62, 2**63): a relabelled frame (0, 1, 2...) is told apart


def record_ids(rows: pd.DataFrame, seen: dict[int, int]) -> pd.Index:
    """Ids of warehouse rows (every column, the batch included): the same row has the same id in
    every extract and every version of one, whichever columns it grants. ``seen`` counts the
    hashes met so far, so that identical rows still get ids of their own."""
    hashed = pd.util.hash_pandas_object(rows, index=False).to_numpy(dtype=np.uint64)
    occurrence = pd.Series(hashed).groupby(hashed).cumcount().to_numpy(dtype=np.uint64)
    if seen:
        occurrence += np.array([seen.get(int(h), 0) for h in hashed], dtype=np.uint64)
    for h, count in zip(*np.unique(hashed, return_counts=True), strict=True):
        seen[int(h)] = seen.get(int(h), 0) + int(count)
    mixed = (hashed + occurrence * np.uint64(0x9E3779B97F4A7C15)) % np.uint64(_ID_BASE)
    return pd.Index(mixed.astype(np.int64) + _ID_BASE, name=RECORD_ID)


def _write_table(engine: Engine, name: str, columns: tuple[str, ...], institutions: tuple[str, ...], path: Path) -> int:
    """Stream the granted rows and columns of table ``name`` into a Parquet file; return the rows.

    Each row's record id (``record_ids``, from all its warehouse columns) is the file's index.
    """
    table = DATA_TABLES[name]
    every = [c.name for c in table.columns]
    empty = typed(pd.DataFrame({c: [] for c in columns}), table)
    empty.index = pd.Index([], dtype="int64", name=RECORD_ID)
    schema = pa.Schema.from_pandas(empty, preserve_index=True)
    query = select(*(table.c[c] for c in every)).where(table.c.institution.in_(institutions))
    rows, seen = 0, {}
    with pq.ParquetWriter(path, schema) as writer, engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(query)
        for part in result.partitions():
            full = pd.DataFrame(part, columns=every)
            frame = typed(full[list(columns)].copy(), table)
            frame.index = record_ids(full, seen)
            writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=True))
            rows += len(frame)
        if rows == 0:
            writer.write_table(pa.Table.from_pandas(empty, schema=schema, preserve_index=True))
    return rows


def _write_manifest(directory: Path, spec: ExtractSpec, rows: dict[str, int]) -> None:
    document = {
        "format": FORMAT,
        "use": spec.name,
        "kind": spec.kind,
        "purpose": spec.purpose,
        "institutions": list(spec.institutions),
        "users": sorted(spec.users),
        "tables": {t: {"columns": list(c), "rows": rows[t], "file": f"{t}.parquet"} for t, c in spec.tables.items()},
        "refreshed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = directory / MANIFEST
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    path.chmod(FILE_MODE)


def _swap(root: Path, name: str, version: Path) -> None:
    """Point ``root/name`` at ``version`` in one rename."""
    link = root / name
    if link.is_dir() and not link.is_symlink():  # a copied extract: set it aside as an old version
        os.rename(link, root / f".{name}.copied-{secrets.token_hex(4)}")
    staged = root / f".{name}.link-{secrets.token_hex(4)}"
    os.symlink(version.name, staged)
    os.replace(staged, link)


def _remove_versions(root: Path, name: str, keep: str | None) -> None:
    current = os.readlink(root / name) if (root / name).is_symlink() else keep
    for path in root.glob(f".{name}.*"):
        if path.name in (current, keep):
            continue
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        else:
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
