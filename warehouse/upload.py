"""Load one institution's file for one year and table into the warehouse (principle 1).

The file (CSV or Parquet) is streamed in chunks, validated against the year's data elements,
pseudonymized, and written in one transaction: either every row loads or nothing does. The
same file again (same checksum) changes nothing; a corrected file replaces the batch before
it, whose record stays in ``batches`` for audit.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine, delete, insert, select, update

from warehouse.elements import ELEMENTS_DIR, TableElements, load_element_set
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


def upload(
    engine: Engine,
    *,
    institution: str,
    year: str,
    table: str,
    path: Path,
    keyer: StudentKeyer,
    loaded_by: str,
    elements_dir: Path = ELEMENTS_DIR,
) -> UploadResult:
    """Validate ``path`` and load it as ``institution``'s ``table`` for ``year``.

    Raises UploadRejected (nothing written) when the file cannot be read or any value
    breaks the data elements.
    """
    path = Path(path)
    member = get_institution(engine, institution)
    elements = load_element_set(year, elements_dir).table(table)
    if elements.segment and elements.segment != member.segment:
        raise WarehouseError(
            f"table {table} holds {SEGMENTS[elements.segment]} data, but institution "
            f"{institution} is a {SEGMENTS[member.segment]}; check --institution and --table"
        )
    if not path.is_file():
        raise UploadRejected(path, "no such file")
    checksum = _sha256(path)
    scope = (
        (batches.c.institution == institution)
        & (batches.c.year == year)
        & (batches.c.table_name == table)
        & batches.c.replaced_by.is_(None)
    )
    with engine.connect() as conn:
        current = conn.execute(select(batches).where(scope)).first()
    if current is not None and current.checksum == checksum:
        return UploadResult("unchanged", current.id, institution, year, table, current.rows, checksum)

    target = DATA_TABLES[table]
    log = ProblemLog()
    rows = 0
    with engine.begin() as conn:
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
        for chunk in _chunks(path, elements):
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
        replaced = None
        if current is not None:
            replaced = current.id
            conn.execute(delete(target).where(target.c.batch_id == current.id))
            conn.execute(update(batches).where(batches.c.id == current.id).values(replaced_by=batch_id))
    status = "replaced" if replaced else "loaded"
    return UploadResult(status, batch_id, institution, year, table, rows, checksum, replaced)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _chunks(path: Path, elements: TableElements) -> Iterator[pd.DataFrame]:
    """The file as chunks of text columns, after checking its columns."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv_chunks(path, elements)
    elif suffix == ".parquet":
        yield from _parquet_chunks(path, elements)
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


def _csv_chunks(path: Path, elements: TableElements) -> Iterator[pd.DataFrame]:
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
    try:
        reader = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            chunksize=CHUNK_ROWS,
            skipinitialspace=False,
        )
        for chunk in reader:
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


def _not_utf8(path: Path, error: UnicodeDecodeError) -> UploadRejected:
    return UploadRejected(
        path,
        f"not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start} of a "
        "block); save the file as UTF-8 CSV and upload it again",
    )


def _parquet_chunks(path: Path, elements: TableElements) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise UploadRejected(path, f"not a readable Parquet file: {error}") from None
    _check_columns(path, parquet.schema_arrow.names, elements)
    for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=list(elements.column_names)):
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
    if frame.empty:  # a header-only CSV yields one empty chunk; INSERT of no rows would fail
        return
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    conn.execute(insert(target), records)
