"""The provisioning commands (`enclave user show|disable|enable|reset-password|set-role|import|
expiring`), `enclave doctor`, and the isolation decision, against a copy of the demo."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from hub import isolation
from hub.accounts import AccountStore, accounts
from hub.audit import AuditLog
from hub.cli import enclave
from hub.doctor import check_modes, check_tls
from warehouse import identity

GOOD = "plum-cider-walnut-42"
TEMPORARY = re.compile(r"\(shown once, not stored\): (\S+)")


@pytest.fixture
def demo(use_demo, tmp_path, monkeypatch) -> Path:
    copy = tmp_path / "demo-var"
    shutil.copytree(use_demo, copy)
    monkeypatch.setenv("ENCLAVE_VAR", str(copy))
    monkeypatch.setenv("USER", "test-admin")
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setenv("ENCLAVE_HUB_PORT", "9")  # no hub listens there
    return copy


@pytest.fixture
def cc(demo) -> str:
    return next(
        m["code"] for m in json.loads((demo / "demo" / "manifest.json").read_text())["members"] if m["segment"] == "cc"
    )


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(enclave, list(args), input=input)


def events(kind: str) -> list[dict]:
    return [e.details for e in AuditLog().events() if e.event == kind]


def test_a_generated_password_is_temporary(demo, cc):
    result = run("user", "add", "alice", "--role", "researcher", "--institution", cc)
    assert result.exit_code == 0, result.output
    assert "temporary" in result.output
    assert "temporary" in AccountStore().pending_step("alice")


def test_show_tells_status_without_the_password(demo, cc):
    run("user", "add", "alice", "--role", "researcher", "--institution", cc, "--password-stdin", input=GOOD + "\n")
    shown = run("user", "show", "alice")
    assert shown.exit_code == 0, shown.output
    assert "researcher" in shown.output and cc in shown.output and "expires" in shown.output
    assert "second factor:     none" in shown.output and GOOD not in shown.output
    missing = run("user", "show", "nobody")
    assert missing.exit_code == 1 and "enclave user list" in missing.output


def test_disable_and_enable_are_confirmed_and_audited(demo, cc):
    run("user", "add", "alice", "--role", "researcher", "--institution", cc, "--password-stdin", input=GOOD + "\n")
    declined = run("user", "disable", "alice", input="n\n")
    assert declined.exit_code == 1 and AccountStore().get("alice").active
    done = run("user", "disable", "alice", "--yes")
    assert done.exit_code == 0, done.output
    assert "hub is not running" in done.output
    assert not AccountStore().get("alice").active
    assert AccountStore().login("alice", GOOD).account is None
    assert "disabled" in run("user", "list").output
    assert run("user", "enable", "alice").exit_code == 0
    assert AccountStore().login("alice", GOOD).account is not None
    assert [e["user"] for e in events("user.disable")] == ["alice"] and events("user.enable")


def test_reset_password_prints_a_temporary_password_and_can_drop_totp(demo, cc):
    run("user", "add", "alice", "--role", "researcher", "--institution", cc, "--password-stdin", input=GOOD + "\n")
    AccountStore().set_totp("alice", "JBSWY3DPEHPK3PXP")
    reset = run("user", "reset-password", "alice", "--totp", "--yes")
    assert reset.exit_code == 0, reset.output
    temporary = TEMPORARY.search(reset.output).group(1)
    assert AccountStore().login("alice", temporary).account is not None
    assert AccountStore().status("alice").totp is False
    assert events("user.reset-password") == [{"user": "alice", "totp_reset": True}]


def test_set_role_checks_the_role_and_institution(demo, cc):
    run("user", "add", "alice", "--role", "researcher", "--institution", cc, "--password-stdin", input=GOOD + "\n")
    assert run("user", "set-role", "alice", "author", "--yes").exit_code == 0
    assert AccountStore().get("alice").role == "author"
    unknown = run("user", "set-role", "alice", "author", "--institution", "ZZZZZZ", "--yes")
    assert unknown.exit_code == 1 and "ZZZZZZ" in unknown.output
    assert run("user", "set-role", "alice", "wizard", "--yes").exit_code == 2
    assert events("user.set-role")[0]["previous"] == "researcher"


def test_import_creates_all_accounts_or_none(demo, cc, tmp_path):
    good = tmp_path / "users.csv"
    good.write_text(f"name,role,institution\nann,researcher,{cc}\nben,author,{cc}\ncat,admin,\n")
    done = run("user", "import", str(good), "--yes")
    assert done.exit_code == 0, done.output
    assert {a.name for a in AccountStore().list()} >= {"ann", "ben", "cat"}
    printed = dict(re.findall(r"^  (\S+)\s+(\S+)$", done.output, re.MULTILINE))
    assert set(printed) == {"ann", "ben", "cat"}
    assert AccountStore().login("ben", printed["ben"]).account.role == "author"
    assert all("temporary" in AccountStore().pending_step(n) for n in ("ann", "ben"))

    bad = tmp_path / "bad.csv"
    bad.write_text(
        f"name,role,institution\ndan,researcher,{cc}\nEve,researcher,{cc}\nfay,wizard,{cc}\ndan,author,{cc}\n"
    )
    refused = run("user", "import", str(bad), "--yes")
    assert refused.exit_code == 1
    for fragment in ("bad.csv row 3", "'Eve'", "row 4", "wizard", "row 5", "appears twice", "nothing was imported"):
        assert fragment in refused.output, fragment
    assert AccountStore().get("dan") is None

    header = tmp_path / "header.csv"
    header.write_text("user,role\nx,researcher\n")
    assert "header name,role,institution" in run("user", "import", str(header), "--yes").output


def test_expiring_lists_passwords_close_to_their_age(demo, cc):
    run("user", "add", "alice", "--role", "researcher", "--institution", cc, "--password-stdin", input=GOOD + "\n")
    store = AccountStore()
    with store.engine.begin() as conn:
        old = datetime.now(UTC) - timedelta(days=85)
        conn.execute(update(accounts).where(accounts.c.name == "alice").values(password_changed_at=old))
    soon = run("user", "expiring", "--days", "7")
    assert soon.exit_code == 0 and "alice" in soon.output and "expires" in soon.output
    assert "alice" not in run("user", "expiring", "--days", "2").output


# ---- the isolation decision and the doctor --------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "root", "mode"),
    [
        pytest.param("off", True, "off", id="off-as-root-shared-account"),
        pytest.param("off", False, "off", id="off-as-a-user"),
        pytest.param("", False, "refused", id="default-not-root-refused"),
        pytest.param("users", False, "refused", id="users-not-root-refused"),
    ],
)
def test_isolation_decision(monkeypatch, setting, root, mode):
    monkeypatch.setenv("ENCLAVE_ISOLATION", setting)
    monkeypatch.setattr(os, "geteuid", lambda: 0 if root else 1000)
    decided = isolation.decide()
    assert decided.mode == mode
    if mode == "refused":
        assert "not running as root" in decided.reason and "ENCLAVE_ISOLATION=off" in decided.reason
    if setting == "off":
        assert decided.shared is root and decided.switches_user is root


def test_isolation_names_the_directory_others_cannot_pass(monkeypatch, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the directory check runs as root (CI runs as root)")
    monkeypatch.setenv("ENCLAVE_ISOLATION", "users")
    locked = tmp_path / "locked"
    (locked / "var").mkdir(parents=True)
    locked.chmod(0o700)
    decided = isolation.decide(locked / "var")
    assert decided.refused and f"other accounts cannot pass {locked} (mode 700; chmod o+x {locked})" in decided.reason


def test_a_bad_isolation_setting_names_the_values(monkeypatch):
    monkeypatch.setenv("ENCLAVE_ISOLATION", "sometimes")
    with pytest.raises(isolation.IsolationError, match="ENCLAVE_ISOLATION=users .* ENCLAVE_ISOLATION=off"):
        isolation.decide()


def test_a_spawn_is_refused_when_the_live_state_disagrees(demo):
    decided = isolation.Isolation("users", "at start")
    (demo / "logs").mkdir(exist_ok=True)
    (demo / "logs" / "hub.log").write_text("")
    (demo / "logs" / "hub.log").chmod(0o644)
    problems = isolation.live_problems(decided)
    assert problems  # either the mode changed (not root) or the log is readable by others
    refused = isolation.live_problems(isolation.Isolation("refused", "the reason"))
    assert refused == ["the reason"]


def test_doctor_reports_open_modes_and_missing_tls(demo, monkeypatch):
    (demo / "secrets").mkdir(exist_ok=True)
    secret = demo / "secrets" / "student-key"
    secret.chmod(0o644)
    failed = [c for c in check_modes(demo) if c.level == "FAIL"]
    assert any(str(secret) in c.what for c in failed)
    monkeypatch.delenv("ENCLAVE_PUBLIC_URL", raising=False)
    assert check_tls()[0].level == "WARN" and "ENCLAVE_PUBLIC_URL" in check_tls()[0].fix
    monkeypatch.setenv("ENCLAVE_PUBLIC_URL", "https://enclave.example.org")
    assert check_tls()[0].level == "OK"


def test_doctor_fails_on_a_problem_and_says_the_fix(demo, monkeypatch):
    (demo / "secrets").mkdir(exist_ok=True)
    (demo / "secrets" / "student-key").chmod(0o644)
    result = run("doctor")
    assert result.exit_code == 1
    assert "FAIL" in result.output and "chmod 600" in result.output and "check(s) failed" in result.output


# ---- who a kernel works for -----------------------------------------------------------------------------


def test_the_operator_reads_every_use_and_a_stranger_none(demo, monkeypatch):
    monkeypatch.delenv("ENCLAVE_USER", raising=False)
    assert identity.current_user() is None  # the process owns var/: every readable extract
    monkeypatch.setattr(os, "geteuid", lambda: 65534)
    assert identity.current_user() == identity.NOBODY
    monkeypatch.setenv("ENCLAVE_USER", "demo-author")
    assert identity.current_user() == "demo-author"  # only where no account decides (off mode)


def test_a_system_account_decides_whatever_the_environment_says(monkeypatch):
    entry = type(
        "Entry", (), {"pw_name": identity.system_user("demo-author"), "pw_gecos": "Enclave account demo-author"}
    )
    monkeypatch.setattr(identity.pwd, "getpwuid", lambda uid: entry)
    monkeypatch.setenv("ENCLAVE_USER", "demo-researcher")
    assert identity.current_user() == "demo-author"
    forged = type("Entry", (), {"pw_name": identity.system_user("mallory"), "pw_gecos": "Enclave account demo-author"})
    monkeypatch.setattr(identity.pwd, "getpwuid", lambda uid: forged)
    assert identity.account_of_uid(1234) is None  # a comment naming another account counts for nothing
