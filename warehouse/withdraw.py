"""An institution withdraws its data (principle 2: each member retains the right to its own).

``withdraw`` deletes the institution's rows (of every table, or of one academic year) in one
transaction and marks the batches they came from as withdrawn, by whom and when; the batch
records stay for audit. The caller then refreshes the extracts of the uses that held the
rows (``warehouse.uses.refresh_extracts``), so the data leaves every workspace too. Frames a
researcher already loaded into a running kernel are not reached: they go when the kernel
stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, func, select, update

from warehouse.elements import check_year
from warehouse.exceptions import WarehouseError
from warehouse.institutions import get_institution
from warehouse.schema import DATA_TABLES, batches


@dataclass(frozen=True)
class Withdrawal:
    """What a withdrawal removed: rows per table and the batches marked withdrawn."""

    institution: str
    year: str | None
    rows: dict[str, int]
    batches: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def held_rows(engine: Engine, institution: str, year: str | None = None) -> dict[str, int]:
    """Rows the warehouse holds for ``institution`` (and ``year``), per table with any."""
    found = {}
    with engine.connect() as conn:
        for name, table in DATA_TABLES.items():
            condition = table.c.institution == institution
            if year is not None:
                condition &= table.c.year == year
            count = conn.scalar(select(func.count()).select_from(table).where(condition))
            if count:
                found[name] = count
    return found


def withdraw(engine: Engine, institution: str, withdrawn_by: str, year: str | None = None) -> Withdrawal:
    """Delete ``institution``'s rows (of ``year``, or all) and mark their batches withdrawn."""
    get_institution(engine, institution)
    if year is not None:
        check_year(year)
    scope = (batches.c.institution == institution) & batches.c.replaced_by.is_(None) & batches.c.withdrawn_at.is_(None)
    if year is not None:
        scope &= batches.c.year == year
    removed: dict[str, int] = {}
    with engine.begin() as conn:
        ids = tuple(conn.scalars(select(batches.c.id).where(scope).order_by(batches.c.id)))
        if not ids:
            what = f"for {year}" if year else "at all"
            raise WarehouseError(f"institution {institution} has no data in the warehouse {what}; nothing to withdraw")
        for name, table in DATA_TABLES.items():
            count = conn.execute(delete(table).where(table.c.batch_id.in_(ids))).rowcount
            if count:
                removed[name] = count
        conn.execute(
            update(batches)
            .where(batches.c.id.in_(ids))
            .values(withdrawn_at=datetime.now(UTC), withdrawn_by=withdrawn_by)
        )
    return Withdrawal(institution, year, removed, ids)
