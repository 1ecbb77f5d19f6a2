"""Load one institution's file for one year and table into the warehouse (principle 1).

The file (CSV or Parquet) is streamed in chunks, validated against the year's adopted data
elements, pseudonymized, and written in one transaction: either every row loads or nothing
does, even if the process is killed half-way. The same file again (same checksum) changes
nothing; a corrected file replaces the batch before it, whose record stays in ``batches`` for
audit. Rows go in with ``executemany`` on SQLite and ``COPY`` on PostgreSQL (about twice as
fast there as SQLAlchemy's batched INSERTs; see benchmarks/upload_throughput.py).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine, delete, insert, select, text, update

from warehouse.adoption import adopted_element_set
from warehouse.elements import TableElements
from warehouse.exceptions import ProblemLog, UploadRejected, WarehouseError
from warehouse.institutions import SEGMENTS, get_institution
from warehouse.pseudonymize import StudentKeyer
from warehouse.schema import DATA_TABLES, batches
from warehouse.validate import validate_chunk

CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class UploadResult:
    """What an upload did: ``status`` is loaded, replaced or unchanged."""

    status: str
    batch_id: int
    institution: str
    year: str
    table: str
    rows: int
    checksum: str
    replaced_batch: int | None = None


@dataclass(frozen=True)
class Batch:
    """One loaded file: its scope, checksum and when and by whom it was loaded."""

    id: int
    institution: str
    year: str
    table: str
    file_name: str
    checksum: str
    rows: int
    loaded_at: datetime
    loaded_by: str


Progress = Callable[[int, int], None]


def current_batch(engine: Engine, institution: str, year: str, table: str) -> Batch | None:
    """The batch whose rows are in the warehouse for this scope, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(batches).where(_scope(institution, year, table))).first()
    return None if row is None else _batch(row)


def _batch(row) -> Batch:
    return Batch(
        row.id,
        row.institution,
        row.year,
        row.table_name,
        row.file_name,
        row.checksum,
        row.rows,
        row.loaded_at,
        row.loaded_by,
    )


def file_checksum(path: Path) -> str:
    """SHA-256 of the file's bytes: the same file uploaded again is recognised by it."""
    return _sha256(Path(path))


def _scope(institution: str, year: str, table: str):
    return (
        (batches.c.institution == institution)
        & (batches.c.year == year)
        & (batches.c.table_name == table)
        & batches.c.replaced_by.is_(None)
        & batches.c.withdrawn_at.is_(None)
    )


def upload(
    engine: Engine,
    *,
    institution: str,
    year: str,
    table: str,
    path: Path,
    keyer: StudentKeyer,
    loaded_by: str,
    elements_dir: Path | None = None,
    progress: Progress = lambda _done, _total: None,
) -> UploadResult:
    """Validate ``path`` and load it as ``institution``'s ``table`` for ``year``.

    Raises UploadRejected (nothing written) when the file cannot be read or any value
    breaks the data elements, NotAdopted when the year's element set is not adopted.
    ``progress(done, total)`` follows the reading of the file (bytes of a CSV, rows of a
    Parquet file).
    """
    path = Path(path)
    member = get_institution(engine, institution)
    elements = adopted_element_set(engine, year, elements_dir).table(table)
    if elements.segment and elements.segment != member.segment:
        raise WarehouseError(
            f"table {table} holds {SEGMENTS[elements.segment]} data, but institution "
            f"{institution} is a {SEGMENTS[member.segment]}; check --institution and --table"
        )
    if not path.is_file():
        raise UploadRejected(path, "no such file")
    checksum = _sha256(path)
    current = current_batch(engine, institution, year, table)
    if current is not None and current.checksum == checksum:
        return UploadResult("unchanged", current.id, institution, year, table, current.rows, checksum)

    target = DATA_TABLES[table]
    log = ProblemLog()
    rows = 0
    with engine.begin() as conn:
        # One upload per scope at a time: the current batch is read again under the lock.
        _lock_scope(conn, institution, year, table)
        found = select(batches.c.id, batches.c.checksum, batches.c.rows).where(_scope(institution, year, table))
        row = conn.execute(found).first()
        if row is not None and row.checksum == checksum:  # loaded by someone else meanwhile
            return UploadResult("unchanged", row.id, institution, year, table, row.rows, checksum)
        replaced = row.id if row is not None else None
        batch_id = conn.execute(
            insert(batches).values(
                institution=institution,
                year=year,
                table_name=table,
                file_name=path.name,
                checksum=checksum,
                rows=0,
                loaded_at=datetime.now(UTC),
                loaded_by=loaded_by,
            )
        ).inserted_primary_key[0]
        for chunk in _chunks(path, elements, progress):
            typed, problems = validate_chunk(chunk, elements, year, first_row=rows + 1)
            rows += len(chunk)
            log.extend(problems)
            if not log:
                _insert(conn, target, _stored(typed, elements, keyer, institution, year, batch_id))
        if rows == 0:
            raise UploadRejected(path, "the file has a header but no data rows")
        if log:
            share = f"{log.total:,} invalid value{'s' if log.total != 1 else ''} in a file of {rows:,} rows"
            raise UploadRejected(path, f"{share}; nothing was loaded. Fix the file and upload it again.", log)
        conn.execute(update(batches).where(batches.c.id == batch_id).values(rows=rows))
        if replaced is not None:
            conn.execute(delete(target).where(target.c.batch_id == replaced))
            conn.execute(update(batches).where(batches.c.id == replaced).values(replaced_by=batch_id))
    status = "replaced" if replaced else "loaded"
    return UploadResult(status, batch_id, institution, year, table, rows, checksum, replaced)


def _lock_scope(conn: Connection, institution: str, year: str, table: str) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the database's write lock, now
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:scope))"), {"scope": f"{institution}/{year}/{table}"})


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _chunks(path: Path, elements: TableElements, progress: Progress) -> Iterator[pd.DataFrame]:
    """The file as chunks of text columns, after checking its columns."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv_chunks(path, elements, progress)
    elif suffix == ".parquet":
        yield from _parquet_chunks(path, elements, progress)
    else:
        raise UploadRejected(path, f"unsupported file type {suffix!r}; upload a .csv or .parquet file")


def _check_columns(path: Path, header: list[str], elements: TableElements) -> None:
    expected = list(elements.column_names)
    missing = [c for c in expected if c not in header]
    extra = [c for c in header if c not in expected]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    parts = []
    if missing:
        parts.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        parts.append(f"column(s) not in the {elements.name} data elements: {', '.join(extra)}")
    if duplicated:
        parts.append(f"duplicated column(s) {', '.join(duplicated)}")
    if parts:
        raise UploadRejected(
            path,
            "; ".join(parts) + f". The {elements.name} columns are: {', '.join(expected)} "
            "(`enclave elements show YEAR` lists them).",
        )


def _csv_chunks(path: Path, elements: TableElements, progress: Progress) -> Iterator[pd.DataFrame]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as error:
        raise _not_utf8(path, error) from None
    except csv.Error as error:  # e.g. a header field over csv.field_size_limit()
        raise UploadRejected(path, f"not a well-formed CSV file: {error}") from None
    if not header:
        raise UploadRejected(path, "the file is empty; expected a header row and data rows")
    _check_columns(path, [h.strip() for h in header], elements)
    size = path.stat().st_size
    handle = path.open("rb")
    try:
        reader = pd.read_csv(
            handle,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            chunksize=CHUNK_ROWS,
            skipinitialspace=False,
        )
        for chunk in reader:
            progress(min(handle.tell(), size), size)
            if not isinstance(chunk.index, pd.RangeIndex):
                # pandas turns the first column into an index when the first data row has
                # more fields than the header, shifting every value one column left.
                raise UploadRejected(
                    path,
                    "not a well-formed CSV file: data rows have more fields than the header "
                    "(look for a trailing comma or an unquoted comma in a value)",
                )
            chunk.columns = [c.strip() for c in chunk.columns]
            yield chunk[list(elements.column_names)].fillna("")
    except UnicodeDecodeError as error:
        raise _not_utf8(path, error) from None
    except pd.errors.ParserError as error:
        raise UploadRejected(path, f"not a well-formed CSV file: {error}") from None
    finally:
        handle.close()


def _not_utf8(path: Path, error: UnicodeDecodeError) -> UploadRejected:
    return UploadRejected(
        path,
        f"not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start} of a "
        "block); save the file as UTF-8 CSV and upload it again",
    )


def _parquet_chunks(path: Path, elements: TableElements, progress: Progress) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise UploadRejected(path, f"not a readable Parquet file: {error}") from None
    _check_columns(path, parquet.schema_arrow.names, elements)
    total, done = parquet.metadata.num_rows, 0
    for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=list(elements.column_names)):
        done += batch.num_rows
        progress(done, total)
        frame = batch.to_pandas()
        for name in frame.columns:
            column = frame[name]
            # The Arrow type, not the pandas dtype: a boolean column with nulls arrives as object.
            if pa.types.is_boolean(batch.schema.field(name).type):
                column = column.map({True: "Y", False: "N"})
            frame[name] = column.astype("string").fillna("").astype(str)
        yield frame


def _stored(
    typed: pd.DataFrame,
    elements: TableElements,
    keyer: StudentKeyer,
    institution: str,
    year: str,
    batch_id: int,
) -> pd.DataFrame:
    """The rows as the warehouse keeps them: identifiers replaced by what ``stores`` names."""
    kinds = {c.identifier: c.name for c in elements.columns if c.identifier}
    stored = pd.DataFrame(index=typed.index)
    stored["batch_id"] = batch_id
    stored["institution"] = institution
    stored["year"] = year
    if "student_key" in elements.stores:
        identifiers = pd.DataFrame({kind: typed[name].fillna("") for kind, name in kinds.items()})
        stored["student_key"] = keyer.keys(identifiers)
    if "birth_year" in elements.stores:
        stored["birth_year"] = typed[kinds["birth_date"]].str[:4].astype(int)
    for column in elements.columns:
        if column.identifier is None:
            stored[column.name] = typed[column.name]
    return stored


def _insert(conn: Connection, target, frame: pd.DataFrame) -> None:
    """Add the rows of ``frame`` to ``target`` inside the caller's transaction."""
    if frame.empty:  # a header-only CSV yields one empty chunk; INSERT of no rows would fail
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, target, frame)
        return
    quote = conn.dialect.identifier_preparer.quote
    if conn.dialect.paramstyle != "qmark":  # another driver: let SQLAlchemy bind the values
        conn.execute(insert(target), frame.astype(object).where(frame.notna(), None).to_dict("records"))
        return
    columns = ", ".join(quote(c) for c in frame.columns)
    marks = ", ".join("?" * len(frame.columns))
    values = [frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame.columns]
    conn.exec_driver_sql(
        f"INSERT INTO {quote(target.name)} ({columns}) VALUES ({marks})", list(zip(*values, strict=True))
    )


def _copy(conn: Connection, target, frame: pd.DataFrame) -> None:
    """PostgreSQL COPY of the rows as CSV (an empty unquoted field is NULL; no value is blank)."""
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(c) for c in frame.columns)
    text = frame.to_csv(index=False, header=False, lineterminator="\n")
    with conn.connection.driver_connection.cursor() as cursor:
        with cursor.copy(f"COPY {quote(target.name)} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(text)


def batch_history(engine: Engine, institution: str | None = None) -> list[tuple[Batch, str]]:
    """Every batch (of ``institution``), oldest first, with its status: current, replaced, withdrawn."""
    query = select(batches).order_by(batches.c.id)
    if institution is not None:
        query = query.where(batches.c.institution == institution)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    history = []
    for row in rows:
        batch = _batch(row)
        if row.withdrawn_at is not None:
            status = f"withdrawn {row.withdrawn_at:%Y-%m-%d} by {row.withdrawn_by}"
        elif row.replaced_by is not None:
            status = f"replaced by batch {row.replaced_by}"
        else:
            status = "current"
        history.append((batch, status))
    return history
