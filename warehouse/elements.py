"""The data elements the consortium agreed to share, one versioned file per academic year.

Files live in ``warehouse/elements/<year>.toml`` (see the header of ``2019-20.toml`` for the
format), versioned with the code. A year's file either states its tables in full or
``extends`` an earlier year. A file is only a proposal until an administrator adopts it
(``warehouse.adoption``); uploads are validated against the adopted element set of their year.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from warehouse.exceptions import ElementSetError

ELEMENTS_DIR = Path(__file__).with_name("elements")
YEAR_PATTERN = re.compile(r"(\d{4})-(\d{2})")
TYPES = {"string", "integer", "number", "boolean", "date", "code", "term"}
IDENTIFIERS = {"ssid", "local_id", "first_name", "last_name", "birth_date"}
STORES = {"student_key", "birth_year"}
COLUMN_KEYS = {"type", "required", "codes", "min", "max", "pattern", "identifier", "in_year", "help"}


@dataclass(frozen=True)
class Column:
    """One agreed element of a table."""

    name: str
    type: str
    required: bool = False
    codes: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    identifier: str | None = None
    in_year: bool = False
    help: str = ""


@dataclass(frozen=True)
class TableElements:
    """The agreed columns of one table, and what the warehouse stores of them."""

    name: str
    segment: str
    description: str
    stores: tuple[str, ...]
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def stored_columns(self) -> tuple[str, ...]:
        """Columns of the warehouse table: codes, derived keys, then non-identifiers."""
        kept = tuple(c.name for c in self.columns if c.identifier is None)
        return ("institution", "year", *self.stores, *kept)


@dataclass(frozen=True)
class ElementSet:
    """The element set of one academic year."""

    year: str
    agreed: str
    source: Path
    tables: dict[str, TableElements]
    # The file and every file it extends, newest first: what an adoption vouches for.
    sources: tuple[Path, ...] = ()

    @property
    def checksum(self) -> str:
        """SHA-256 over the bytes of the year's file and the files it extends."""
        digest = hashlib.sha256()
        for path in self.sources or (self.source,):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()

    def table(self, name: str) -> TableElements:
        try:
            return self.tables[name]
        except KeyError:
            raise ElementSetError(
                f"table {name!r} is not among the {self.year} data elements ({self.source.name}); "
                f"choose one of: {', '.join(sorted(self.tables))}"
            ) from None


def check_year(year: str) -> str:
    """Return ``year`` if it is an academic year like ``2023-24``; raise otherwise."""
    match = YEAR_PATTERN.fullmatch(year)
    if not match or (int(match[1]) + 1) % 100 != int(match[2]):
        raise ElementSetError(f"year {year!r} is not an academic year such as 2023-24")
    return year


def elements_dir() -> Path:
    """The folder of element-set files (read at call time, so tests can point it elsewhere)."""
    return ELEMENTS_DIR


def available_years(directory: Path | None = None) -> list[str]:
    """Academic years that have an element-set file, oldest first."""
    directory = elements_dir() if directory is None else directory
    return sorted(p.stem for p in directory.glob("*.toml") if YEAR_PATTERN.fullmatch(p.stem))


def load_element_set(year: str, directory: Path | None = None) -> ElementSet:
    """Load and check the element set of ``year`` (following ``extends``)."""
    check_year(year)
    directory = elements_dir() if directory is None else directory
    source = directory / f"{year}.toml"
    if not source.exists():
        have = ", ".join(available_years(directory)) or "none"
        raise ElementSetError(
            f"no element set has been adopted for {year} (looked for {source}); years with element sets: {have}"
        )
    try:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ElementSetError(f"{source}: not valid TOML: {error}") from None
    if document.get("year") != year:
        raise ElementSetError(f"{source}: `year` must be {year!r}, found {document.get('year')!r}")
    agreed = str(document.get("agreed", ""))
    if "extends" in document:
        # Checked before loading the parent: a file extending itself or a later year
        # would otherwise recurse, or blame the later year's file instead of this one.
        if str(document["extends"]) >= year:
            raise ElementSetError(f"{source}: `extends` must name an earlier year, found {document['extends']!r}")
        parent = load_element_set(str(document["extends"]), directory)
        return ElementSet(year, agreed, source, parent.tables, (source, *parent.sources))
    codes = document.get("codes", {})
    tables = {name: _table(source, name, spec, codes) for name, spec in document.get("tables", {}).items()}
    if not tables:
        raise ElementSetError(f"{source}: defines no [tables]")
    return ElementSet(year=year, agreed=agreed, source=source, tables=tables, sources=(source,))


def _table(source: Path, name: str, spec: dict, codes: dict) -> TableElements:
    where = f"{source}: [tables.{name}]"
    stores = tuple(spec.get("stores", ()))
    if not set(stores) <= STORES:
        raise ElementSetError(f"{where} stores {sorted(set(stores) - STORES)}; allowed: {sorted(STORES)}")
    columns = tuple(
        _column(f"{where}.columns.{column}", column, column_spec, codes)
        for column, column_spec in spec.get("columns", {}).items()
    )
    if not columns:
        raise ElementSetError(f"{where} has no columns")
    if stores and not any(c.identifier for c in columns):
        raise ElementSetError(f"{where} stores a student key but has no identifier columns")
    return TableElements(
        name=name,
        segment=str(spec.get("segment", "")),
        description=str(spec.get("description", "")),
        stores=stores,
        columns=columns,
    )


def _column(where: str, name: str, spec: dict, codes: dict) -> Column:
    unknown = set(spec) - COLUMN_KEYS
    if unknown:
        raise ElementSetError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(COLUMN_KEYS)}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise ElementSetError(f"{where}: type {kind!r} is not one of {sorted(TYPES)}")
    identifier = spec.get("identifier")
    if identifier is not None and identifier not in IDENTIFIERS:
        raise ElementSetError(f"{where}: identifier {identifier!r} is not one of {sorted(IDENTIFIERS)}")
    allowed = spec.get("codes")
    if isinstance(allowed, str):
        if allowed not in codes:
            raise ElementSetError(f"{where}: code list {allowed!r} is not defined under [codes]")
        allowed = codes[allowed]
    if kind == "code" and not allowed:
        raise ElementSetError(f"{where}: a column of type code needs `codes`")
    pattern = spec.get("pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ElementSetError(f"{where}: pattern {pattern!r} is not a regular expression: {error}") from None
    return Column(
        name=name,
        type=kind,
        required=bool(spec.get("required", False)),
        codes=tuple(str(code) for code in allowed) if allowed else None,
        min=spec.get("min"),
        max=spec.get("max"),
        pattern=pattern,
        identifier=identifier,
        in_year=bool(spec.get("in_year", False)),
        help=str(spec.get("help", "")),
    )


def term_year(term: str) -> str:
    """The academic year of a term code: 2024FA → 2024-25; 2025SP and 2025SU → 2024-25."""
    start = int(term[:4]) if term[4:] == "FA" else int(term[:4]) - 1
    return f"{start}-{(start + 1) % 100:02d}"
