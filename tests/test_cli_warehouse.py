"""Tests for the warehouse commands of `enclave` (hub/cli: institutions, elements, data, uses) with CliRunner, on
SQLite and PostgreSQL: institution add, elements adopt/list, data upload/withdraw/list/linkage,
use add/grant/revoke/remove/list/refresh, and the own-data refresh after `user add`. Every
state change is audited, destructive ones ask first, refusals exit 1 and change nothing."""

from __future__ import annotations

import json
import os
import re
import shutil

import pandas as pd
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result

import warehouse.elements
from hub.audit import AuditLog
from hub.cli import enclave
from tests.test_upload import counts, course_row, k12_row, write_csv
from warehouse import extracts
from warehouse.db import connect
from warehouse.elements import ELEMENTS_DIR

CODE = re.compile(r"^Added (?:K-12 district|community college|university) ([A-Z0-9]{6})\.$", re.MULTILINE)


@pytest.fixture
def cli(warehouse_url, monkeypatch):
    monkeypatch.setattr("hub.accounts._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setenv("USER", "test-admin")
    monkeypatch.setenv("ENCLAVE_STUDENT_KEY", "00ff" * 16)
    return warehouse_url


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(enclave, list(args), input=input)


def ok(*args: str, input: str | None = None) -> str:
    result = run(*args, input=input)
    assert result.exit_code == 0, result.output
    return result.output


def refused(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


def events(name: str | None = None) -> list:
    return [e for e in AuditLog().events() if name is None or e.event == name]


def add_member(segment: str, name: str) -> str:
    return CODE.search(ok("institution", "add", "--segment", segment, "--name", name)).group(1)


def engine():
    return connect()


@pytest.fixture
def college(cli) -> str:
    """A college with the 2024-25 element set adopted."""
    code = add_member("cc", "Sierra Alta Community College")
    ok("elements", "adopt", str(ELEMENTS_DIR / "2024-25.toml"))
    return code


def courses(tmp_path, name="courses.csv", rows=30, **changes):
    return str(write_csv(tmp_path / name, [course_row(i, **changes) for i in range(rows)]))


def account(name: str, role: str, institution: str) -> None:
    ok("user", "add", name, "--institution", institution, "--role", role, "--password-stdin", input="a-long-password\n")


# ---- institutions ------------------------------------------------------------------------


def test_institution_add_prints_the_code_and_audits_without_the_name(cli):
    output = ok("institution", "add", "--segment", "univ", "--name", "Universidad del Valle")
    code = CODE.search(output).group(1)
    assert "secret" in output
    assert f"{code}  university" in ok("institution", "list")
    (event,) = events("institution.add")
    assert event.details == {"code": code, "segment": "univ"} and event.actor == "test-admin"
    assert "Valle" not in json.dumps([e.details for e in events()])


def test_institution_add_refusals(cli):
    add_member("k12", "Valle Verde Unified")
    refused(run("institution", "add", "--segment", "k12", "--name", "Valle Verde Unified"), "already exists")
    wrong = run("institution", "add", "--segment", "college", "--name", "Other")
    assert wrong.exit_code == 2 and "k12" in wrong.output
    assert len(events("institution.add")) == 1


# ---- element sets ------------------------------------------------------------------------


@pytest.fixture
def elements_dir(tmp_path, monkeypatch):
    directory = tmp_path / "elements"
    shutil.copytree(ELEMENTS_DIR, directory)
    monkeypatch.setattr(warehouse.elements, "ELEMENTS_DIR", directory)
    return directory


def test_elements_adopt_and_list(cli, elements_dir):
    output = ok("elements", "adopt", str(elements_dir / "2024-25.toml"))
    chain = "2023-24.toml, 2022-23.toml, 2021-22.toml, 2020-21.toml, 2019-20.toml"
    assert f"Adopted the 2024-25 element set (2024-25.toml, extending {chain}; sha256 " in output
    (event,) = events("elements.adopt")
    assert event.details["year"] == "2024-25" and event.details["replaces"] is None
    assert "already adopted" in ok("elements", "adopt", str(elements_dir / "2024-25.toml"))
    listing = dict(line.split("  ", 1) for line in ok("elements", "list").splitlines())
    assert listing["2024-25"].startswith("adopted ") and listing["2024-25"].endswith(" by test-admin")
    assert listing["2023-24"] == "not adopted"

    (elements_dir / "2024-25.toml").write_text((elements_dir / "2024-25.toml").read_text() + "# amended\n")
    assert "CHANGED since" in dict(line.split("  ", 1) for line in ok("elements", "list").splitlines())["2024-25"]
    declined = run("elements", "adopt", str(elements_dir / "2024-25.toml"), input="n\n")
    assert declined.exit_code == 1 and "will be replaced" in declined.output and "Aborted" in declined.output
    assert len(events("elements.adopt")) == 1
    ok("elements", "adopt", str(elements_dir / "2024-25.toml"), "--yes")
    assert len(events("elements.adopt")) == 2 and events("elements.adopt")[1].details["replaces"]


def test_elements_adopt_refuses_a_file_outside_the_elements_folder(cli, tmp_path):
    outside = tmp_path / "2024-25.toml"
    outside.write_text((ELEMENTS_DIR / "2024-25.toml").read_text())
    refused(run("elements", "adopt", str(outside)), "element sets live in", "commit it")
    assert events("elements.adopt") == []


# ---- data upload -------------------------------------------------------------------------


def test_upload_loads_audits_and_writes_the_own_extract(college, tmp_path):
    output = ok(
        "data", "upload", "--institution", college, "--year", "2024-25", "--table", "cc_courses", courses(tmp_path)
    )
    assert "Checking courses.csv" in output  # the progress bar's label
    assert f"rows of cc_courses for {college}, 2024-25." in output and "Loaded batch 1: 30" in output
    assert f"Refreshed extracts: own-{college}." in output
    (event,) = events("data.upload")
    assert event.details | {"checksum": None} == {
        "institution": college,
        "year": "2024-25",
        "table": "cc_courses",
        "file": "courses.csv",
        "checksum": None,
        "rows": 30,
        "batch": 1,
        "status": "loaded",
        "replaced_batch": None,
    }
    assert extracts.read_manifest(f"own-{college}").rows == {"cc_courses": 30}


def test_the_same_file_again_says_so_and_changes_nothing(college, tmp_path):
    arguments = ("data", "upload", "--institution", college, "--year", "2024-25", "--table", "cc_courses")
    ok(*arguments, courses(tmp_path))
    before = counts(engine())
    output = ok(*arguments, courses(tmp_path))
    assert "\nUnchanged: this file (sha256 " in output and "already loaded as batch 1" in output
    assert "nothing was done" in output
    assert counts(engine()) == before and len(events("data.upload")) == 1


def test_a_corrected_file_replaces_the_batch_after_confirmation(college, tmp_path):
    arguments = ("data", "upload", "--institution", college, "--year", "2024-25", "--table", "cc_courses")
    ok(*arguments, courses(tmp_path))
    corrected = courses(tmp_path, "fixed.csv", rows=25)
    before = counts(engine())

    declined = run(*arguments, corrected, input="n\n")
    assert (
        declined.exit_code == 1
        and "already has cc_courses for 2024-25: batch 1 (courses.csv, 30 rows" in declined.output
    )
    assert counts(engine()) == before and len(events("data.upload")) == 1

    output = ok(*arguments, corrected, "--yes")
    assert "Replaced batch 1 with batch 2: 25 rows" in output
    assert events("data.upload")[-1].details["replaced_batch"] == 1
    assert extracts.read_manifest(f"own-{college}").rows == {"cc_courses": 25}
    history = ok("data", "list", "--institution", college).splitlines()
    assert "[replaced by batch 2]" in history[0] and "courses.csv" in history[0]
    assert "[current]" in history[1] and "fixed.csv" in history[1]


def test_a_rejected_file_exits_1_with_the_grouped_report_and_writes_nothing(college, tmp_path):
    rows = [course_row(i) for i in range(40)]
    for row in rows[::4]:
        row["grade"] = "Z"
    path = str(write_csv(tmp_path / "courses.csv", rows))
    before = counts(engine())
    result = run("data", "upload", "--institution", college, "--year", "2024-25", "--table", "cc_courses", path)
    refused(
        result,
        "10 invalid values in a file of 40 rows; nothing was loaded",
        "By column and rule:",
        "row 1, column grade",
    )
    assert counts(engine()) == before
    assert events("data.upload") == []
    (event,) = events("data.upload.rejected")
    assert event.details["problems"] == 10 and event.details["file"] == "courses.csv"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--institution", "ZZZZZZ", "--year", "2024-25"], "no institution has the code 'ZZZZZZ'"),
        (["--year", "2023-24"], "has not been adopted; once the consortium's representatives"),
        (["--year", "2031-32"], "no element set has been adopted for 2031-32"),
    ],
    ids=["unknown-institution", "year-not-adopted", "year-without-element-set"],
)
def test_uploads_refused_before_reading_the_file(college, tmp_path, arguments, message):
    if "--institution" not in arguments:
        arguments = ["--institution", college, *arguments]
    refused(run("data", "upload", *arguments, "--table", "cc_courses", courses(tmp_path)), message)
    assert counts(engine())["batches"] == 0


# ---- withdraw, list, linkage -------------------------------------------------------------


def test_withdraw_asks_then_removes_audits_and_refreshes(college, tmp_path):
    ok("data", "upload", "--institution", college, "--year", "2024-25", "--table", "cc_courses", courses(tmp_path))
    declined = run("data", "withdraw", "--institution", college, input="n\n")
    assert (
        declined.exit_code == 1 and f"Withdraw {college}'s data of every year (30 cc_courses rows)" in declined.output
    )
    assert counts(engine())["cc_courses"] == 30 and events("data.withdraw") == []

    output = ok("data", "withdraw", "--institution", college, "--yes")
    assert f"Withdrew 30 rows of {college} (1 batches" in output and f"own-{college}" in output
    assert counts(engine())["cc_courses"] == 0
    assert events("data.withdraw")[0].details == {
        "institution": college,
        "year": None,
        "rows": {"cc_courses": 30},
        "batches": [1],
    }
    assert f"own-{college}" not in extracts.extract_names()
    refused(run("data", "withdraw", "--institution", college, "--yes"), "nothing to withdraw")


def test_linkage_reports_students_found_in_both_segments(cli, tmp_path):
    district = add_member("k12", "Valle Verde Unified")
    college = add_member("cc", "Sierra Alta College")
    for year in ("2023-24", "2024-25"):
        ok("elements", "adopt", str(ELEMENTS_DIR / f"{year}.toml"))
    k12 = write_csv(tmp_path / "k12.csv", [k12_row(i) for i in range(20)])
    ok("data", "upload", "--institution", district, "--year", "2023-24", "--table", "k12_enrollment", str(k12))
    students = []
    for i in range(10):  # half of the college students came from the district (same SSID)
        person = k12_row(i) if i < 5 else k12_row(i, ssid=f"{8800000000 + i}")
        students.append(
            {key: person[key] for key in ("ssid", "first_name", "last_name", "birth_date", "gender", "ethnicity")}
            | {"local_id": f"C{i}", "first_term": "2024FA", "first_time": "Y", "promise_grant": "N"}
        )
    path = write_csv(tmp_path / "students.csv", students)
    ok("data", "upload", "--institution", college, "--year", "2024-25", "--table", "cc_students", str(path))
    lines = ok("data", "linkage").splitlines()
    assert lines[0].split()[:4] == ["50.0", "%", "5", "of"] and "(cc_from_k12)" in lines[0]
    assert any("25.0 %" in line and "k12_to_postsecondary" in line for line in lines)


# ---- approved uses -----------------------------------------------------------------------


@pytest.fixture
def with_data(college, tmp_path) -> str:
    ok("data", "upload", "--institution", college, "--year", "2024-25", "--table", "cc_courses", courses(tmp_path))
    account("alice", "researcher", college)
    account("rita", "reviewer", college)
    return college


def test_use_add_grant_revoke_remove(with_data):
    output = ok(
        "use", "add", "success", "--purpose", "Course success by term", "--tables", "cc_courses",
        "--elements", "term,grade", "--institutions", "all",
    )  # fmt: skip
    assert "Added use success: cc_courses of 1 institutions." in output and "Refreshed extracts: success." in output
    assert events("use.add")[0].details["tables"] == {"cc_courses": ["institution", "year", "term", "grade"]}
    frame = pd.read_parquet(extracts.read_manifest("success").file("cc_courses"))
    assert list(frame.columns) == ["institution", "year", "term", "grade"] and len(frame) == 30

    assert "Granted use success to alice." in ok("use", "grant", "success", "alice")
    assert extracts.read_manifest("success").users == ("alice",)
    assert "already has use success" in ok("use", "grant", "success", "alice")
    assert len(events("use.grant")) == 1

    declined = run("use", "revoke", "success", "alice", input="n\n")
    assert declined.exit_code == 1 and extracts.read_manifest("success").users == ("alice",)
    assert "Revoked use success from alice." in ok("use", "revoke", "success", "alice", "--yes")
    assert extracts.read_manifest("success").users == ()
    refused(run("use", "revoke", "success", "alice", "--yes"), "alice has no grant of use success")
    assert events("use.revoke")[0].details == {"use": "success", "user": "alice"}

    ok("use", "grant", "success", "alice")
    assert "Ended use success." in ok("use", "remove", "success", "--yes")
    assert "success" not in extracts.extract_names()
    assert events("use.remove")[0].details == {"use": "success", "users": ["alice"]}
    refused(run("use", "grant", "success", "alice"), "no use named 'success'")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--tables", "cc_courses", "--elements", "shoe_size"], "no table of the use has the element 'shoe_size'"),
        (["--tables", "cc_grades"], "unknown table(s) 'cc_grades'"),
        (["--tables", "cc_courses", "--institutions", "ZZZZZZ"], "'ZZZZZZ'"),
    ],
    ids=["unknown-element", "unknown-table", "unknown-institution"],
)
def test_use_add_refusals(with_data, arguments, message):
    if "--institutions" not in arguments:
        arguments = [*arguments, "--institutions", "all"]
    refused(run("use", "add", "study", "--purpose", "p", *arguments), message)
    assert events("use.add") == [] and "study" not in extracts.extract_names()


@pytest.mark.parametrize(
    ("user", "message"),
    [("nobody", "no account named 'nobody'"), ("rita", "rita is a reviewer")],
    ids=["no-such-account", "reviewer"],
)
def test_use_grant_refusals(with_data, user, message):
    ok("use", "add", "study", "--purpose", "p", "--tables", "cc_courses", "--institutions", "all")
    refused(run("use", "grant", "study", user), message)
    assert events("use.grant") == [] and extracts.read_manifest("study").users == ()


def test_use_list_and_refresh(with_data):
    college = with_data
    ok("use", "add", "study", "--purpose", "A study", "--tables", "cc_courses", "--institutions", college)
    ok("use", "grant", "study", "alice")
    listing = ok("use", "list")
    assert "study: A study" in listing and "users: alice" in listing and f"institutions: {college}" in listing
    assert f"own-{college}: the institution's own data; users: alice, rita" in listing
    before = os.readlink(extracts.uses_root() / "study")
    output = ok("use", "refresh", "study")
    assert output.strip().endswith("Refreshed extracts: study.")
    assert os.readlink(extracts.uses_root() / "study") != before
    assert events("use.refresh")[0].details == {"uses": ["study"]}
    refused(run("use", "refresh", "nope"), "no use named 'nope'")


def test_user_add_gives_the_new_account_its_institutions_data(with_data):
    college = with_data
    own = f"own-{college}"
    assert extracts.read_manifest(own).users == ("alice", "rita")
    ok("user", "add", "carol", "--institution", college, "--role", "author")
    assert extracts.read_manifest(own).users == ("alice", "carol", "rita")
    before = os.readlink(extracts.uses_root() / own)
    ok("user", "list")
    assert os.readlink(extracts.uses_root() / own) == before  # listing changes nothing


def test_account_changes_keep_the_own_data_use_current(with_data, monkeypatch):
    """An institution's active accounts are its own-data use's users: adding, disabling,
    enabling and moving an account rewrite the use's manifest in the same call (hub.flow),
    whoever calls it, and each change is audited."""
    from hub import flow, hub_api
    from hub.accounts import AccountStore

    college = with_data
    other = add_member("cc", "Costa Verde Community College")
    own = f"own-{college}"
    assert extracts.read_manifest(own).users == ("alice", "rita")
    monkeypatch.setattr(hub_api, "end_user", lambda name: "the hub is not running here")

    output = ok("user", "disable", "alice", "--yes")
    assert f"Refreshed extracts: {own}." in output and extracts.read_manifest(own).users == ("rita",)
    ok("user", "enable", "alice")
    assert extracts.read_manifest(own).users == ("alice", "rita")
    ok("user", "set-role", "alice", "author", "--institution", other, "--yes")
    assert extracts.read_manifest(own).users == ("rita",)
    refused(run("user", "set-role", "rita", "author", "--institution", "ZZZZZZ", "--yes"), "'ZZZZZZ'")
    assert extracts.read_manifest(own).users == ("rita",) and len(events("user.set-role")) == 1

    # The plain functions are the invariant, not the command: a caller without the CLI gets the same.
    store = AccountStore()
    changed = flow.add_account(
        store,
        actor="a-test",
        name="bea",
        role="researcher",
        institution=college,
        password="a-long-password",
        temporary=False,
    )
    assert own in changed.refreshed and extracts.read_manifest(own).users == ("bea", "rita")
    flow.disable_account(store, actor="a-test", name="bea")
    assert extracts.read_manifest(own).users == ("rita",)
    assert [(e.actor, e.details["user"]) for e in events() if e.event in ("user.add", "user.disable")][-2:] == [
        ("a-test", "bea"),
        ("a-test", "bea"),
    ]
