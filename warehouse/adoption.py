"""Adopting a year's element set (principle 9): who adopted which file, and when.

The representatives agree on the data elements each year; an administrator then adopts the
agreed file with ``enclave elements adopt warehouse/elements/YEAR.toml``. Adoption records
the year, the file, a checksum over the file and every file it ``extends``, who and when, in
``element_adoptions``; earlier adoptions of the year stay as history. An upload for a year
is refused unless the year's file is adopted and unchanged since (same checksum), so an edit
to an element file cannot take effect without someone adopting it.

Element files live with the code in ``warehouse/elements/`` (versioned in git); adopting a
file elsewhere is refused with the fix. The shipped files are proposals of the fictional
demo consortium: ``enclave demo build`` adopts them (as ``demo``), a real deployment adopts
the files its representatives agreed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, insert, select

from warehouse.elements import YEAR_PATTERN, ElementSet, elements_dir, load_element_set
from warehouse.exceptions import ElementSetError
from warehouse.schema import DATA_TABLES, element_adoptions


class NotAdopted(ElementSetError):
    """The year's element set is not adopted, or changed since it was adopted."""


@dataclass(frozen=True)
class Adoption:
    year: str
    file_name: str
    checksum: str
    adopted_by: str
    adopted_at: datetime


def element_set_of_file(path: Path) -> ElementSet:
    """The element set in ``path``, which must be ``warehouse/elements/<YEAR>.toml``."""
    path = Path(path)
    directory = elements_dir()
    if not path.is_file():
        raise ElementSetError(f"{path}: no such file")
    if not YEAR_PATTERN.fullmatch(path.stem) or path.suffix != ".toml":
        raise ElementSetError(f"{path}: an element-set file is named after its academic year, e.g. 2026-27.toml")
    if path.resolve().parent != directory.resolve():
        raise ElementSetError(
            f"{path}: element sets live in {directory} (versioned with the code); copy the file "
            f"there, commit it, and adopt {directory / path.name}"
        )
    return load_element_set(path.stem, directory)


def check_matches_schema(element_set: ElementSet) -> None:
    """Refuse an element set whose stored columns differ from the warehouse tables."""
    for table in element_set.tables.values():
        if table.name not in DATA_TABLES:
            raise ElementSetError(
                f"{element_set.source}: table {table.name} is not in the warehouse yet; "
                "a schema migration (warehouse/migrations) must add it before the element set is adopted"
            )
        schema = tuple(c.name for c in DATA_TABLES[table.name].columns if c.name != "batch_id")
        if table.stored_columns != schema:
            raise ElementSetError(
                f"{element_set.source}: table {table.name} would store {', '.join(table.stored_columns)} but the "
                f"warehouse table has {', '.join(schema)}; a schema migration must come first"
            )


def adopt(engine: Engine, path: Path, adopted_by: str) -> tuple[Adoption, Adoption | None]:
    """Record the adoption of the element-set file ``path``; return it and the one it follows.

    Adopting the same content again records nothing and returns the existing adoption twice.
    """
    element_set = element_set_of_file(path)
    check_matches_schema(element_set)
    previous = current_adoption(engine, element_set.year)
    checksum = element_set.checksum
    if previous is not None and previous.checksum == checksum:
        return previous, previous
    adoption = Adoption(element_set.year, element_set.source.name, checksum, adopted_by, datetime.now(UTC))
    with engine.begin() as conn:
        conn.execute(
            insert(element_adoptions).values(
                year=adoption.year,
                file_name=adoption.file_name,
                checksum=adoption.checksum,
                adopted_by=adoption.adopted_by,
                adopted_at=adoption.adopted_at,
            )
        )
    return adoption, previous


def current_adoption(engine: Engine, year: str) -> Adoption | None:
    """The newest adoption of ``year``, or None."""
    query = (
        select(element_adoptions)
        .where(element_adoptions.c.year == year)
        .order_by(element_adoptions.c.id.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    at = row.adopted_at if row.adopted_at.tzinfo else row.adopted_at.replace(tzinfo=UTC)
    return Adoption(row.year, row.file_name, row.checksum, row.adopted_by, at)


def adopted_element_set(engine: Engine, year: str, directory: Path | None = None) -> ElementSet:
    """The element set of ``year`` if it is adopted and unchanged; raise NotAdopted otherwise."""
    element_set = load_element_set(year, directory)
    adoption = current_adoption(engine, year)
    command = f"enclave elements adopt {element_set.source}"
    if adoption is None:
        raise NotAdopted(
            f"the element set for {year} ({element_set.source}) has not been adopted; once the "
            f"consortium's representatives have agreed on it, an administrator runs `{command}`"
        )
    if adoption.checksum != element_set.checksum:
        changed = ", ".join(p.name for p in element_set.sources)
        raise NotAdopted(
            f"the element set for {year} ({changed}) changed after it was adopted on "
            f"{adoption.adopted_at:%Y-%m-%d} by {adoption.adopted_by}; restore the adopted version, "
            f"or, if the change was agreed, run `{command}`"
        )
    return element_set


def adopt_all(engine: Engine, adopted_by: str) -> list[Adoption]:
    """Adopt every element-set file in the elements folder (the demo's shortcut)."""
    from warehouse.elements import available_years

    directory = elements_dir()
    return [adopt(engine, directory / f"{year}.toml", adopted_by)[0] for year in available_years(directory)]
