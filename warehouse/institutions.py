"""Member institutions (principle 8): each gets a random secret code; names are admin-only."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select

from warehouse.exceptions import UnknownInstitution, WarehouseError
from warehouse.schema import institution_names, institutions

SEGMENTS = {"k12": "K-12 district", "cc": "community college", "univ": "university"}
# No 0/O, 1/I/L: codes are read aloud and typed by hand.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6


@dataclass(frozen=True)
class Institution:
    code: str
    segment: str
    name: str | None = None  # only filled for administrators


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def add_institution(engine: Engine, name: str, segment: str) -> Institution:
    """Register an institution under a fresh secret code and return it."""
    if segment not in SEGMENTS:
        raise WarehouseError(f"segment {segment!r} is not one of: {', '.join(SEGMENTS)}")
    name = name.strip()
    if not name:
        raise WarehouseError("an institution needs a name")
    with engine.begin() as conn:
        if conn.execute(select(institution_names.c.code).where(institution_names.c.name == name)).first():
            raise WarehouseError(f"an institution named {name!r} already exists")
        taken = set(conn.scalars(select(institutions.c.code)))
        code = new_code()
        while code in taken:
            code = new_code()
        conn.execute(insert(institutions).values(code=code, segment=segment, added_at=datetime.now(UTC)))
        conn.execute(insert(institution_names).values(code=code, name=name))
    return Institution(code=code, segment=segment, name=name)


def get_institution(engine: Engine, code: str) -> Institution:
    """The institution with ``code`` (without its name); raise UnknownInstitution if none."""
    with engine.connect() as conn:
        row = conn.execute(select(institutions).where(institutions.c.code == code)).first()
    if row is None:
        raise UnknownInstitution(
            f"no institution has the code {code!r}; an administrator can list codes with `enclave institution list`"
        )
    return Institution(code=row.code, segment=row.segment)


def list_institutions(engine: Engine, *, with_names: bool = False) -> list[Institution]:
    """All institutions by segment then code; names only when ``with_names`` (admin use)."""
    query = select(institutions.c.code, institutions.c.segment, institution_names.c.name).join(
        institution_names, institution_names.c.code == institutions.c.code
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    order = list(SEGMENTS)
    return sorted(
        (Institution(r.code, r.segment, r.name if with_names else None) for r in rows),
        key=lambda i: (order.index(i.segment), i.code),
    )
