"""Approved uses (principles 2 and 3): named purposes with the tables, elements and
institutions they may read, and the users granted them.

An administrator records a use the consortium approved (``enclave use add``), grants it to
users and revokes it; the records and the grant history stay in the warehouse. Each use has
an extract (``warehouse.extracts``) holding only its elements of its institutions' rows;
``institution`` and ``year`` are always included, every other element (``student_key``
too) only when named. ``--institutions all`` means the members at the time the use is
added: an institution that joins later is not in an existing use until the use is re-made.

Besides the approved uses, every institution with data has an implicit use ``own-<CODE>``:
all elements of its own rows, granted to every active account of that institution (principle
2: an institution's users always see its own data). Its users come from the account store,
which the warehouse does not read: callers pass ``members`` (institution code → user names).

Extracts are refreshed synchronously after every change that affects them: uploads and
withdrawals (the uses that include the institution), grants and revocations (the use's
manifest only), account changes (the own uses' manifests).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, and_, insert, select, update

from warehouse import extracts
from warehouse.exceptions import UnknownInstitution, WarehouseError
from warehouse.extracts import ExtractSpec
from warehouse.institutions import list_institutions
from warehouse.schema import DATA_TABLES, use_elements, use_grants, use_institutions, uses

NAME = re.compile(r"[a-z][a-z0-9-]{1,39}")
OWN = "own-"
ALWAYS = ("institution", "year")  # every extract row says whose and which year


class UseError(WarehouseError):
    """A use cannot be added, granted or revoked as asked."""


class UnknownUse(UseError):
    """No (active) use has the given name."""


@dataclass(frozen=True)
class Use:
    """An approved use as recorded: its grant of tables and columns, institutions and users."""

    name: str
    purpose: str
    tables: dict[str, tuple[str, ...]]  # table -> columns (institution and year first)
    institutions: tuple[str, ...]
    users: tuple[str, ...]
    created_by: str
    created_at: datetime


def own_use_name(code: str) -> str:
    return f"{OWN}{code}"


def element_choices(table: str) -> tuple[str, ...]:
    """The elements of ``table`` a use may choose (every stored column but the fixed ones)."""
    return tuple(c.name for c in DATA_TABLES[table].columns if c.name not in ("batch_id", *ALWAYS))


def resolve_elements(tables: Sequence[str], elements: Sequence[str] | None) -> dict[str, tuple[str, ...]]:
    """Table → granted columns, from element names (``grade`` or ``cc_courses.grade``; None: all)."""
    unknown = [t for t in tables if t not in DATA_TABLES]
    if unknown or not tables:
        raise UseError(
            f"unknown table(s) {', '.join(map(repr, unknown))}; tables: {', '.join(DATA_TABLES)}"
            if unknown
            else f"a use needs at least one table; tables: {', '.join(DATA_TABLES)}"
        )
    chosen: dict[str, set[str]] = {t: set() for t in tables}
    for element in elements if elements is not None else ():
        table, _, column = element.rpartition(".")
        targets = [table] if table else [t for t in tables if column in element_choices(t)]
        if table and table not in chosen:
            raise UseError(f"element {element!r} names table {table}, which is not among the use's tables")
        if not targets or any(column not in element_choices(t) for t in targets):
            offered = "; ".join(f"{t}: {', '.join(element_choices(t))}" for t in tables)
            raise UseError(f"no table of the use has the element {element!r}; elements: {offered}")
        for target in targets:
            chosen[target].add(column)
    granted = {}
    for table in tables:
        names = set(element_choices(table)) if elements is None else chosen[table]
        if not names:
            raise UseError(
                f"none of the chosen elements belongs to {table}; add some of its elements "
                f"({', '.join(element_choices(table))}) or leave the table out"
            )
        granted[table] = (*ALWAYS, *(c for c in element_choices(table) if c in names))
    return granted


def add_use(
    engine: Engine,
    name: str,
    *,
    purpose: str,
    tables: Sequence[str],
    elements: Sequence[str] | None,
    institutions: Sequence[str] | None,
    created_by: str,
) -> Use:
    """Record an approved use; ``elements``/``institutions`` None mean all (institutions: now)."""
    if not NAME.fullmatch(name) or name.startswith(OWN):
        raise UseError(
            f"use name {name!r} must be 2-40 characters: a lower-case letter, then lower-case letters, "
            f"digits or '-', and not start with {OWN!r} (kept for institutions' own data)"
        )
    if not purpose.strip():
        raise UseError("a use needs its approved purpose: give --purpose TEXT")
    granted = resolve_elements(list(dict.fromkeys(tables)), elements)
    members = [m.code for m in list_institutions(engine)]
    codes = members if institutions is None else list(dict.fromkeys(institutions))
    unknown = [c for c in codes if c not in members]
    if unknown:
        raise UnknownInstitution(
            f"no institution has the code(s) {', '.join(map(repr, unknown))}; `enclave institution list` lists them"
        )
    if not codes:
        raise UseError("a use needs at least one institution: give --institutions CODE,... or all")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        if conn.scalar(select(uses.c.name).where(uses.c.name == name)) is not None:
            raise UseError(f"a use named {name!r} already exists (uses keep their names, even when removed)")
        conn.execute(insert(uses).values(name=name, purpose=purpose.strip(), created_by=created_by, created_at=now))
        conn.execute(
            insert(use_elements),
            [{"use_name": name, "table_name": t, "column_name": c} for t, cols in granted.items() for c in cols],
        )
        conn.execute(insert(use_institutions), [{"use_name": name, "institution": c} for c in codes])
    return get_use(engine, name)


def get_use(engine: Engine, name: str) -> Use:
    """The active use ``name``; raise UnknownUse with the names that exist."""
    found = {u.name: u for u in list_uses(engine)}
    if name not in found:
        if name.startswith(OWN):
            raise UnknownUse(f"{name} is an institution's own data: it follows the institution's accounts")
        have = ", ".join(found) or "none yet"
        raise UnknownUse(f"no use named {name!r}; uses: {have} (`enclave use list`)")
    return found[name]


def list_uses(engine: Engine) -> list[Use]:
    """Active approved uses by name."""
    with engine.connect() as conn:
        rows = conn.execute(select(uses).where(uses.c.removed_at.is_(None)).order_by(uses.c.name)).all()
        elements = conn.execute(select(use_elements)).all()
        members = conn.execute(select(use_institutions)).all()
        grants = conn.execute(
            select(use_grants.c.use_name, use_grants.c.user_name).where(use_grants.c.revoked_at.is_(None))
        ).all()
    found = []
    for row in rows:
        columns: dict[str, set[str]] = {}
        for e in elements:
            if e.use_name == row.name:
                columns.setdefault(e.table_name, set()).add(e.column_name)
        tables = {
            t: tuple(c for c in (*ALWAYS, *element_choices(t)) if c in columns[t]) for t in DATA_TABLES if t in columns
        }
        found.append(
            Use(
                name=row.name,
                purpose=row.purpose,
                tables=tables,
                institutions=tuple(sorted(m.institution for m in members if m.use_name == row.name)),
                users=tuple(sorted(g.user_name for g in grants if g.use_name == row.name)),
                created_by=row.created_by,
                created_at=row.created_at,
            )
        )
    return found


def grant(engine: Engine, name: str, user: str, granted_by: str) -> bool:
    """Grant use ``name`` to ``user``; False if it already was."""
    use = get_use(engine, name)
    if user in use.users:
        return False
    with engine.begin() as conn:
        conn.execute(
            insert(use_grants).values(
                use_name=name, user_name=user, granted_by=granted_by, granted_at=datetime.now(UTC)
            )
        )
    return True


def check_can_revoke(use: Use, user: str) -> None:
    """Raise UseError, naming who has the use, unless ``user`` holds a grant of it."""
    if user not in use.users:
        granted = ", ".join(use.users) or "nobody"
        raise UseError(f"{user} has no grant of use {use.name}; it is granted to: {granted}")


def can_revoke(use: Use, user: str) -> bool:
    try:
        check_can_revoke(use, user)
    except UseError:
        return False
    return True


def revoke(engine: Engine, name: str, user: str, revoked_by: str) -> None:
    """End ``user``'s grant of use ``name`` (the grant's record stays)."""
    check_can_revoke(get_use(engine, name), user)
    with engine.begin() as conn:
        conn.execute(
            update(use_grants)
            .where(
                and_(use_grants.c.use_name == name, use_grants.c.user_name == user, use_grants.c.revoked_at.is_(None))
            )
            .values(revoked_by=revoked_by, revoked_at=datetime.now(UTC))
        )


def remove_use(engine: Engine, name: str, removed_by: str) -> Use:
    """End use ``name``: its grants end, its record stays; the caller deletes the extract."""
    use = get_use(engine, name)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(update(uses).where(uses.c.name == name).values(removed_by=removed_by, removed_at=now))
        conn.execute(
            update(use_grants)
            .where(and_(use_grants.c.use_name == name, use_grants.c.revoked_at.is_(None)))
            .values(revoked_by=removed_by, revoked_at=now)
        )
    return use


# ---- extracts ------------------------------------------------------------------------------


def extract_specs(engine: Engine, members: Mapping[str, Iterable[str]]) -> list[ExtractSpec]:
    """What every extract must hold: the approved uses, then each institution's own use."""
    specs = [ExtractSpec(u.name, "approved", u.purpose, u.tables, u.institutions, u.users) for u in list_uses(engine)]
    holdings = _holdings(engine)
    for member in list_institutions(engine):
        tables = [t for t in DATA_TABLES if t in holdings.get(member.code, ())]
        if not tables:
            continue
        specs.append(
            ExtractSpec(
                own_use_name(member.code),
                "own",
                f"the data of institution {member.code}, which it owns (principle 2)",
                {t: (*ALWAYS, *element_choices(t)) for t in tables},
                (member.code,),
                tuple(sorted(members.get(member.code, ()))),
            )
        )
    return specs


def refresh_extracts(
    engine: Engine,
    members: Mapping[str, Iterable[str]],
    *,
    institutions: Collection[str] | None = None,
    names: Collection[str] | None = None,
    tables: Collection[str] | None = None,
    grants_only: bool = False,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> list[str]:
    """Bring the extracts up to date; return the names of those rewritten or removed.

    Only the uses that include one of ``institutions`` or are named in ``names`` are
    rewritten (neither given: all); of those, only ``tables`` are read again from the
    warehouse (None: all; ``grants_only``: none, just the manifests). Extracts of removed
    uses and of institutions without data any more are deleted.
    """
    specs = extract_specs(engine, members)
    wanted = {s.name for s in specs}
    touched = [name for name in extracts.extract_names() if name not in wanted and extracts.remove(name)]
    chosen = [
        s
        for s in specs
        if (institutions is None and names is None)
        or (institutions is not None and set(s.institutions) & set(institutions))
        or (names is not None and s.name in names)
    ]
    total = sum(len(s.tables) for s in chosen)
    done = 0

    def advance(_table: str) -> None:
        nonlocal done
        done += 1
        progress(done, total)

    changed = set() if grants_only else (set(tables) if tables is not None else None)
    for spec in chosen:
        extracts.publish(engine, spec, changed=changed, progress=advance)
        touched.append(spec.name)
    return touched


def _holdings(engine: Engine) -> dict[str, set[str]]:
    """Institution code → tables in which it has rows."""
    found: dict[str, set[str]] = {}
    with engine.connect() as conn:
        for name, table in DATA_TABLES.items():
            for code in conn.scalars(select(table.c.institution).distinct()):
                found.setdefault(code, set()).add(name)
    return found
