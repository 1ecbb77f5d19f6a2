"""Build the demo consortium: synthetic raw files loaded through the real upload path.

The generator writes each member's raw files (identifiers included) to a private scratch
directory; the shipped element sets are adopted (by ``demo``); each institution is
registered under a fresh secret code; every file is uploaded exactly as a member's would be;
an approved use ``demo-consortium`` (every table, element and institution) is granted to the
demo researcher and author, and the extracts are written. The raw files are then deleted
unless a directory to keep them was given. What was built, with the cross-segment linkage
rates, is recorded in ``var/demo/manifest.json``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from warehouse.adoption import adopt_all
from warehouse.db import create_schema
from warehouse.institutions import add_institution
from warehouse.linkage import linkage_rates
from warehouse.pseudonymize import StudentKeyer
from warehouse.settings import state_path
from warehouse.synthetic import generate
from warehouse.upload import upload
from warehouse.uses import add_use, grant, refresh_extracts

DEMO_USE = "demo-consortium"
DEMO_PURPOSE = "Demo: every table, element and institution of the synthetic consortium, for trying Enclave out."
DEMO_GRANTEES = ("demo-researcher", "demo-author")  # hub.demo creates these accounts
DEMO_ACTOR = "demo"


@dataclass(frozen=True)
class DemoMember:
    code: str
    name: str
    segment: str


@dataclass(frozen=True)
class DemoManifest:
    students: int
    seed: int
    members: tuple[DemoMember, ...]
    rows: dict[str, int]
    linkage: dict[str, dict] = field(default_factory=dict)

    def member(self, segment: str, index: int = 0) -> DemoMember:
        return [m for m in self.members if m.segment == segment][index]


def manifest_path() -> Path:
    return state_path("demo", "manifest.json")


def read_manifest() -> DemoManifest | None:
    """The manifest of the demo built in this state directory, or None."""
    path = manifest_path()
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return DemoManifest(
        students=data["students"],
        seed=data["seed"],
        members=tuple(DemoMember(**m) for m in data["members"]),
        rows=data["rows"],
        linkage=data.get("linkage", {}),
    )


def build_demo(
    engine: Engine,
    keyer: StudentKeyer,
    *,
    students: int = 20_000,
    seed: int = 0,
    raw_dir: Path | None = None,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> DemoManifest:
    """Generate and load the demo consortium into an empty warehouse.

    ``progress(done, total)`` is called after each uploaded file and each extract table.
    """
    create_schema(engine)
    adopt_all(engine, DEMO_ACTOR)
    scratch = Path(tempfile.mkdtemp(prefix="enclave-raw-")) if raw_dir is None else Path(raw_dir)
    try:
        consortium = generate(scratch, students=students, seed=seed)
        steps = len(consortium.files) + 1  # the extracts: one step, counted in tables below
        codes: dict[str, DemoMember] = {}
        for member in consortium.institutions:
            registered = add_institution(engine, member.name, member.segment)
            codes[member.slug] = DemoMember(registered.code, member.name, member.segment)
        rows: dict[str, int] = {}
        for number, raw in enumerate(consortium.files, start=1):
            result = upload(
                engine,
                institution=codes[raw.institution].code,
                year=raw.year,
                table=raw.table,
                path=raw.path,
                keyer=keyer,
                loaded_by=DEMO_ACTOR,
            )
            rows[raw.table] = rows.get(raw.table, 0) + result.rows
            progress(number, steps)
    finally:
        if raw_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    add_use(
        engine,
        DEMO_USE,
        purpose=DEMO_PURPOSE,
        tables=list(rows),
        elements=None,
        institutions=None,
        created_by=DEMO_ACTOR,
    )
    for user in DEMO_GRANTEES:
        grant(engine, DEMO_USE, user, DEMO_ACTOR)
    # The own-institution uses get their users when hub.demo creates the accounts.
    refresh_extracts(engine, {})
    progress(steps, steps)
    manifest = DemoManifest(students, seed, tuple(codes.values()), rows, linkage_rates(engine))
    path = manifest_path()
    path.write_text(json.dumps(asdict(manifest), indent=2))
    path.chmod(0o600)
    return manifest
