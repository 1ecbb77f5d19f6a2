"""The account a release or policy command acts as must prove itself (hub/cli/acting.py,
hub/signin.py): its password and second factor, through the hub's own login — lockout,
disabled accounts, audit events — before anything is decided; reading needs no account."""

from __future__ import annotations

import importlib
import shutil
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import click
import pyotp
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import create_engine, update

from hub.accounts import AccountStore, accounts
from hub.audit import AuditLog
from hub.cli import enclave
from hub.governance import Governance
from hub.release.desk import ReleaseDesk
from hub.release.recheck import neutral_members
from output_filters.policy import DEFAULT_PATH
from warehouse.institutions import SEGMENTS

PASSWORD = "a long enough password 42"
MEMBERS = [("K7Q2ZP", "k12", "Riverside Unified"), ("C3M9XT", "cc", "Valley College"), ("U5RW8H", "univ", "State U")]
SYSTEM_USER = "opsuser"  # the system account running the commands
# Decides through the command, and so must prove the account; everything else only reads.
ACTING = {
    ("release", "request"),
    ("release", "approve"),
    ("release", "reject"),
    ("release", "resubmit"),
    ("release", "withdraw"),
    ("policy", "propose"),
    ("policy", "approve"),
    ("policy", "reject"),
}


@pytest.fixture
def world(isolated_state, tmp_path, monkeypatch):
    """Reviewers and admins of each member (with a second factor), a reviewer who has not set
    one up yet (rev-new), a researcher (rita); one release request of rita's in review; the
    commands' desk and governance over them, as the CLI builds them (``via`` from the CLI)."""
    monkeypatch.setattr("hub.accounts._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setenv("USER", SYSTEM_USER)
    monkeypatch.delenv("SUDO_USER", raising=False)
    policy = tmp_path / "policy.toml"
    shutil.copyfile(DEFAULT_PATH, policy)
    monkeypatch.setenv("ENCLAVE_POLICY", str(policy))
    isolated_state.mkdir(parents=True, exist_ok=True)
    store = AccountStore(create_engine(f"sqlite:///{isolated_state / 'accounts.db'}"))
    secrets = {}
    for name, role, code in [
        ("rev-k12", "reviewer", "K7Q2ZP"),
        ("rev-cc", "reviewer", "C3M9XT"),
        ("rev-univ", "reviewer", "U5RW8H"),
        ("rev-new", "reviewer", "U5RW8H"),
        ("adm-k12", "admin", "K7Q2ZP"),
        ("adm-cc", "admin", "C3M9XT"),
        ("adm-univ", "admin", "U5RW8H"),
        ("rita", "researcher", "C3M9XT"),
    ]:
        store.add(name, role, code, PASSWORD)
        if name != "rev-new" and role != "researcher":
            secrets[name] = pyotp.random_base32()
            store.set_totp(name, secrets[name])
    members = neutral_members(MEMBERS, SEGMENTS)

    def desk(via: str = "") -> ReleaseDesk:
        return ReleaseDesk(lambda: members, 10, engine=store.engine, accounts=store, via=via)

    def governance(via: str = "") -> Governance:
        return Governance(lambda: [m[0] for m in MEMBERS], engine=store.engine, accounts=store, path=policy, via=via)

    # The modules, not the click groups hub.cli names alike.
    monkeypatch.setattr(importlib.import_module("hub.cli.release"), "default_desk", desk)
    monkeypatch.setattr(importlib.import_module("hub.cli.policy"), "default_governance", governance)
    governance().check_governed("test")
    table = tmp_path / "work" / "counts.csv"
    table.parent.mkdir()
    table.write_text("college,students\nC3M9XT,120\nU5RW8H,45\n")
    request = desk().submit("rita", [table], "county brief")
    mark = len(AuditLog().events())  # what the commands write comes after this
    return SimpleNamespace(store=store, secrets=secrets, desk=desk(), request=request.id, table=table, mark=mark)


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(enclave, list(args), input=input)


def credentials(world, name: str, password: str = PASSWORD) -> str:
    """What a script pipes to --password-stdin: the password, then the current code if any."""
    code = pyotp.TOTP(world.secrets[name]).now() if name in world.secrets else None
    return password + "\n" + (code + "\n" if code else "")


def written(world) -> list[tuple[str, str, dict]]:
    return [(e.actor, e.event, e.details) for e in AuditLog().events()[world.mark :]]


def test_a_decision_proves_the_account_and_the_record_keeps_account_and_system_user(world):
    done = run(
        "release",
        "approve",
        str(world.request),
        "--as",
        "rev-k12",
        "--password-stdin",
        input=credentials(world, "rev-k12"),
    )
    assert done.exit_code == 0, done.output
    assert world.desk.get(world.request).decisions[0].reviewer == "rev-k12"
    (login_actor, login, login_details), (actor, decided, details) = written(world)
    assert (login_actor, login, login_details["source"]) == ("rev-k12", "login.success", f"cli:{SYSTEM_USER}")
    assert (actor, decided, details["via"]) == ("rev-k12", "release.decide", f"cli:{SYSTEM_USER}")


def test_a_wrong_password_is_refused_recorded_and_counted(world):
    refused = run(
        "release", "approve", str(world.request), "--as", "rev-k12", "--password-stdin", input="guess\n000000\n"
    )
    assert refused.exit_code == 1
    assert "could not sign in as rev-k12: wrong password" in refused.output
    assert "give rev-k12's own password" in refused.output and "5 failures in a row lock it" in refused.output
    assert written(world) == [
        ("rev-k12", "login.failure", {"source": f"cli:{SYSTEM_USER}", "reason": "wrong password"})
    ]
    assert world.desk.get(world.request).decisions == []
    assert world.store.status("rev-k12").failures == 1


def test_repeated_failures_lock_the_account_and_a_locked_account_is_refused(world):
    for _attempt in range(5):
        refused = run(
            "policy", "propose", "threshold=11", "--reason", "x", "--as", "adm-cc", "--password-stdin", input="guess\n"
        )
        assert refused.exit_code == 1
    assert "That was 5 failures in a row: adm-cc is now locked for 15 minutes" in refused.output
    assert [event for _, event, _ in written(world)] == ["login.failure"] * 5 + ["login.lockout"]
    right = run(
        "policy",
        "propose",
        "threshold=11",
        "--reason",
        "x",
        "--as",
        "adm-cc",
        "--password-stdin",
        input=credentials(world, "adm-cc"),
    )
    assert right.exit_code == 1
    assert "adm-cc is locked until" in right.output and "`enclave user reset-password adm-cc`" in right.output
    assert written(world)[-1][1] == "login.failure" and written(world)[-1][2]["reason"].startswith("locked until")
    assert world.desk.get(world.request).status.value == "in_review"
    assert not [e for e in AuditLog().events() if e.event.startswith("policy.propose")]


def test_an_account_locked_from_the_hub_login_is_refused_too(world):
    with world.store.engine.begin() as conn:
        later = datetime.now(UTC) + timedelta(minutes=10)
        conn.execute(update(accounts).where(accounts.c.name == "rev-cc").values(locked_until=later))
    refused = run(
        "release",
        "approve",
        str(world.request),
        "--as",
        "rev-cc",
        "--password-stdin",
        input=credentials(world, "rev-cc"),
    )
    assert refused.exit_code == 1 and f"rev-cc is locked until {later:%H:%M} UTC" in refused.output
    assert [event for _, event, _ in written(world)] == ["login.failure"]


def test_a_disabled_account_is_refused(world):
    world.store.set_active("rita", False)
    refused = run(
        "release", "withdraw", str(world.request), "--yes", "--as", "rita", "--password-stdin", input=PASSWORD + "\n"
    )
    assert refused.exit_code == 1
    assert "rita is disabled" in refused.output and "`enclave user enable rita`" in refused.output
    assert world.desk.get(world.request).status.value == "in_review"


def test_the_second_factor_is_required_when_the_account_has_one(world):
    name = "rev-univ"
    alone = run("release", "approve", str(world.request), "--as", name, "--password-stdin", input=PASSWORD + "\n")
    assert alone.exit_code == 1 and "the one-time code is wrong, used before or missing" in alone.output
    wrong = run(
        "release", "approve", str(world.request), "--as", name, "--password-stdin", input=PASSWORD + "\n123456\n"
    )
    assert wrong.exit_code == 1 and "one-time code" in wrong.output
    assert [e["reason"] for _, _, e in written(world)] == ["wrong or missing one-time code"] * 2
    assert world.store.status(name).failures == 2
    code = pyotp.TOTP(world.secrets[name]).now()
    done = run(
        "release", "approve", str(world.request), "--as", name, "--password-stdin", input=f"{PASSWORD}\n{code}\n"
    )
    assert done.exit_code == 0, done.output
    again = run(
        "release",
        "reject",
        str(world.request),
        "--comment",
        "no",
        "--as",
        name,
        "--password-stdin",
        input=f"{PASSWORD}\n{code}\n",
    )
    assert again.exit_code == 1 and "each code is good once" in again.output


def test_an_account_with_a_step_pending_may_not_act(world):
    """A reviewer must have a second factor (policy totp_roles): without one, the hub would give
    only the set-up page, so the command decides nothing either."""
    refused = run(
        "release", "approve", str(world.request), "--as", "rev-new", "--password-stdin", input=PASSWORD + "\n"
    )
    assert refused.exit_code == 1
    assert "rev-new signed in but may not act yet" in refused.output and "/hub/totp" in refused.output
    assert [(a, e) for a, e, _ in written(world)] == [("rev-new", "login.success")]
    assert world.desk.get(world.request).decisions == []


def test_the_password_prompt_is_hidden_and_names_the_account(world, monkeypatch):
    monkeypatch.setenv("USER", "rita")  # no --as: the system user's own account
    typed = run("release", "withdraw", str(world.request), "--yes", input=PASSWORD + "\n")
    assert typed.exit_code == 0, typed.output
    assert "Password for rita:" in typed.output and PASSWORD not in typed.output
    assert world.desk.get(world.request).status.value == "withdrawn"
    assert written(world)[0][:2] == ("rita", "login.success")


def test_the_code_is_asked_for_after_the_password(world):
    code = pyotp.TOTP(world.secrets["adm-k12"]).now()
    typed = run(
        "policy", "propose", "threshold=11", "--reason", "state rule", "--as", "adm-k12", input=f"{PASSWORD}\n{code}\n"
    )
    assert typed.exit_code == 0, typed.output
    assert "One-time code for adm-k12" in typed.output and "Proposal 1" in typed.output
    proposed = [d for a, e, d in written(world) if e == "policy.propose"]
    assert proposed[0]["via"] == f"cli:{SYSTEM_USER}"


def test_an_unknown_account_is_refused_like_a_wrong_password(world):
    refused = run("release", "approve", str(world.request), "--as", "nobody", "--password-stdin", input=PASSWORD + "\n")
    assert (
        refused.exit_code == 1 and "could not sign in as nobody: wrong password, or no such account" in refused.output
    )
    assert written(world) == [("nobody", "login.failure", {"source": f"cli:{SYSTEM_USER}", "reason": "unknown user"})]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["release", "list"], id="release-list"),
        pytest.param(["release", "show", "1"], id="release-show"),
        pytest.param(["release", "diff", "1"], id="release-diff"),
        pytest.param(["policy", "history"], id="policy-history"),
        pytest.param(["policy", "show"], id="policy-show"),
    ],
)
def test_reading_commands_need_no_credentials(world, args):
    shown = run(*args, input="")
    assert shown.exit_code == 0, shown.output
    assert "Password" not in shown.output
    assert not [e for _, e, _ in written(world) if e.startswith("login.")]


def test_release_files_needs_no_credentials_either(world):
    shown = run("release", "files", str(world.request), input="")
    assert shown.exit_code == 1 and "nothing is released yet" in shown.output  # its own answer, no prompt


@pytest.mark.parametrize("group", ["release", "policy"])
def test_every_command_that_decides_takes_credentials_and_no_other_does(group):
    for name, command in enclave.commands[group].commands.items():
        options = {o for p in command.params if isinstance(p, click.Option) for o in p.opts}
        acts = {"--as", "--password-stdin"} <= options
        assert acts == ((group, name) in ACTING), f"enclave {group} {name}"


@pytest.mark.parametrize(("group", "name"), sorted(ACTING), ids=[" ".join(a) for a in sorted(ACTING)])
def test_a_deciding_command_without_a_password_does_nothing(world, group, name):
    args = {
        ("release", "request"): [str(world.table), "--purpose", "again"],
        ("release", "approve"): [str(world.request)],
        ("release", "reject"): [str(world.request), "--comment", "no"],
        ("release", "resubmit"): [str(world.request), str(world.table)],
        ("release", "withdraw"): [str(world.request), "--yes"],
        ("policy", "propose"): ["threshold=11", "--reason", "x"],
        ("policy", "approve"): ["1"],
        ("policy", "reject"): ["1", "--comment", "no"],
    }[(group, name)]
    refused = run(group, name, *args, "--as", "rev-k12", input="")  # the prompt meets the end of input
    assert refused.exit_code == 1 and "Password for rev-k12" in refused.output and "Aborted" in refused.output
    assert written(world) == []
