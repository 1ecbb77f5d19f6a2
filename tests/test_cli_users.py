"""Tests for the `enclave user`, `enclave institution` and `enclave elements` commands, run
against a private copy of the session's demo consortium."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import update

from hub.accounts import AccountStore, accounts
from hub.audit import AuditLog
from hub.cli import enclave

ELEMENTS_DIR = Path(__file__).resolve().parents[1] / "warehouse" / "elements"
SEGMENT_NAMES = {"k12": "K-12 district", "cc": "community college", "univ": "university"}
DEMO_USERS = {"demo-researcher", "demo-author", "demo-reviewer", "demo-admin"}
PASSWORD_LINE = re.compile(r"^Password \(shown once, not stored\): (\S+)$", re.MULTILINE)


@pytest.fixture
def demo(use_demo, tmp_path, monkeypatch) -> Path:
    """A writable copy of the session demo; ENCLAVE_VAR points at it."""
    copy = tmp_path / "demo-var"
    shutil.copytree(use_demo, copy)
    monkeypatch.setenv("ENCLAVE_VAR", str(copy))
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setenv("USER", "test-admin")
    return copy


@pytest.fixture
def members(demo) -> list[dict]:
    return json.loads((demo / "demo" / "manifest.json").read_text())["members"]


def code_of(members: list[dict], segment: str) -> str:
    return next(m["code"] for m in members if m["segment"] == segment)


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(enclave, list(args), input=input)


# ---- enclave user add ------------------------------------------------------------------------


def test_user_add_prints_a_generated_password_once_and_audits(demo, members):
    code = code_of(members, "cc")
    result = run("user", "add", "alice", "--institution", code, "--role", "researcher")
    assert result.exit_code == 0, result.output
    assert f"Created researcher alice at {code}." in result.output
    passwords = PASSWORD_LINE.findall(result.output)
    assert len(passwords) == 1
    password = passwords[0]
    assert result.output.count(password) == 1
    assert len(password) >= 12

    account = AccountStore().verify("alice", password)
    assert (account.name, account.role, account.institution, account.active) == ("alice", "researcher", code, True)

    log = AuditLog()
    last = log.events()[-1]
    assert (last.actor, last.event) == ("test-admin", "user.add")
    assert last.details == {"user": "alice", "role": "researcher", "institution": code}
    assert password not in json.dumps([e.details for e in log.events()])
    assert log.verify() is None


def test_two_generated_passwords_differ(demo, members):
    code = code_of(members, "k12")
    first = run("user", "add", "alice", "--institution", code, "--role", "author")
    second = run("user", "add", "bob", "--institution", code, "--role", "author")
    assert PASSWORD_LINE.findall(first.output) != PASSWORD_LINE.findall(second.output)


def test_user_add_reads_the_password_from_stdin_and_does_not_print_it(demo, members):
    code = code_of(members, "univ")
    password = "a-long-chosen-passphrase"
    result = run(
        "user", "add", "bob", "--institution", code, "--role", "reviewer", "--password-stdin", input=password + "\n"
    )
    assert result.exit_code == 0, result.output
    assert f"Created reviewer bob at {code}." in result.output
    assert password not in result.output
    assert "Password" not in result.output
    assert AccountStore().verify("bob", password).role == "reviewer"
    assert AuditLog().events()[-1].details == {"user": "bob", "role": "reviewer", "institution": code}


def test_user_add_admin_needs_no_institution(demo):
    result = run("user", "add", "root", "--role", "admin")
    assert result.exit_code == 0, result.output
    assert "Created admin root." in result.output
    assert AccountStore().get("root").institution is None


def refused(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    for fragment in fragments:
        assert fragment in result.output
    assert "Traceback" not in result.output


def test_user_add_refuses_an_unknown_institution_code(demo):
    audited = len(AuditLog().events())
    result = run("user", "add", "alice", "--institution", "ZZZZZZ", "--role", "researcher")
    refused(result, "'ZZZZZZ'", "enclave institution list")
    assert "Password" not in result.output
    assert AccountStore().get("alice") is None
    assert len(AuditLog().events()) == audited


def test_user_add_refuses_an_existing_name(demo, members):
    code = code_of(members, "cc")
    first = run("user", "add", "alice", "--institution", code, "--role", "researcher")
    audited = len(AuditLog().events())
    result = run("user", "add", "alice", "--institution", code_of(members, "k12"), "--role", "author")
    refused(result, "'alice'", "already exists")
    assert "Password" not in result.output
    # The first account and its password are untouched.
    assert AccountStore().verify("alice", PASSWORD_LINE.findall(first.output)[0]).role == "researcher"
    assert len(AuditLog().events()) == audited


def test_user_add_refuses_a_demo_account_name(demo):
    refused(run("user", "add", "demo-admin", "--role", "admin"), "'demo-admin'", "already exists")


def test_user_add_refuses_a_researcher_without_institution(demo):
    refused(run("user", "add", "alice", "--role", "researcher"), "--institution CODE")
    assert AccountStore().get("alice") is None


def test_user_add_refuses_a_bad_name(demo, members):
    result = run("user", "add", "Alice", "--institution", code_of(members, "cc"), "--role", "researcher")
    refused(result, "user name", "lower-case")


def test_user_add_refuses_an_unknown_role(demo):
    result = run("user", "add", "alice", "--role", "superuser")
    assert result.exit_code == 2
    assert "superuser" in result.output
    assert "researcher" in result.output and "admin" in result.output
    assert AccountStore().get("alice") is None


def test_user_add_refuses_a_short_password_from_stdin(demo):
    result = run("user", "add", "root", "--role", "admin", "--password-stdin", input="short\n")
    refused(result, "min_password_length", "12")
    assert AccountStore().get("root") is None


# ---- enclave user list -----------------------------------------------------------------------


def test_user_list_shows_role_institution_and_status(demo, members):
    cc, univ = code_of(members, "cc"), code_of(members, "univ")
    run("user", "add", "alice", "--institution", cc, "--role", "researcher")
    run("user", "add", "root", "--role", "admin")
    run("user", "add", "zed", "--institution", univ, "--role", "reviewer")
    result = run("user", "list")
    assert result.exit_code == 0, result.output
    rows = [line.split(maxsplit=3) for line in result.output.splitlines()]
    by_name = {row[0]: row[1:] for row in rows}
    assert set(by_name) == DEMO_USERS | {"alice", "root", "zed"}
    assert [row[0] for row in rows] == sorted(by_name)
    # Generated passwords are temporary: changed at the first login.
    assert by_name["alice"] == ["researcher", cc, "active (temporary password)"]
    assert by_name["root"] == ["admin", "-", "active (temporary password)"]
    assert by_name["zed"] == ["reviewer", univ, "active (temporary password)"]
    assert by_name["demo-researcher"] == ["researcher", code_of(members, "cc"), "active"]
    assert by_name["demo-admin"] == ["admin", "-", "active"]


def test_user_list_shows_inactive_accounts(demo):
    store = AccountStore()
    with store.engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.name == "demo-author").values(active=False))
    lines = {line.split()[0]: line.split()[-1] for line in run("user", "list").output.splitlines()}
    assert lines["demo-author"] == "disabled"
    assert lines["demo-admin"] == "active"


# ---- enclave institution list ----------------------------------------------------------------


def test_institution_list_shows_the_13_members_with_segments_and_names(demo, members):
    result = run("institution", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(members) == 13
    assert len(lines) == 13
    listed = {}
    for line in lines:
        code, rest = line.split(None, 1)
        listed[code] = rest
    assert set(listed) == {m["code"] for m in members}
    for member in members:
        segment = SEGMENT_NAMES[member["segment"]]
        assert listed[member["code"]].startswith(segment)
        assert listed[member["code"]][len(segment) :].strip() == member["name"]
    # Ordered by segment (K-12, community college, university), then by code.
    order = list(SEGMENT_NAMES)
    segment_of = {m["code"]: m["segment"] for m in members}
    keys = [(order.index(segment_of[code]), code) for code in listed]
    assert keys == sorted(keys)
    assert {segment_of[code] for code in listed} == set(SEGMENT_NAMES)


# ---- enclave elements show -------------------------------------------------------------------


def element_tables(year: str) -> dict[str, dict]:
    """The tables of ``year`` read straight from the element files (following `extends`)."""
    document = tomllib.loads((ELEMENTS_DIR / f"{year}.toml").read_text(encoding="utf-8"))
    if "extends" in document:
        return element_tables(document["extends"])
    return document["tables"]


def sections(output: str) -> dict[str, list[str]]:
    """Table name -> its column lines, from `enclave elements show` output."""
    found: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines()[1:]:
        if not line.strip():
            continue
        if line.startswith("  "):
            found[current].append(line.strip())
        else:
            current = line.split(" ", 1)[0]
            found[current] = []
    return found


def test_elements_show_lists_tables_and_marks_identifiers_not_stored(demo):
    result = run("elements", "show", "2023-24")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("Data elements for 2023-24 (agreed ")
    assert "2023-24.toml" in result.output.splitlines()[0]
    tables = element_tables("2023-24")
    shown = sections(result.output)
    assert list(shown) == list(tables)
    for name, spec in tables.items():
        lines = {line.split()[0]: line for line in shown[name]}
        assert list(lines) == list(spec["columns"])
        for column, column_spec in spec["columns"].items():
            if "identifier" in column_spec:
                assert "identifier, not stored" in lines[column], (name, column)
            else:
                assert "not stored" not in lines[column], (name, column)
    # The table headings name the segment.
    assert "k12_enrollment (K-12 district):" in result.output
    assert "univ_students (university):" in result.output


def test_elements_show_for_a_year_without_elements_names_the_years_that_exist(demo):
    result = run("elements", "show", "2031-32")
    refused(result, "2031-32")
    years = sorted(p.stem for p in ELEMENTS_DIR.glob("*.toml"))
    assert years
    for year in years:
        assert year in result.output


def test_elements_show_refuses_a_malformed_year(demo):
    refused(run("elements", "show", "2031"), "'2031'", "2023-24")
