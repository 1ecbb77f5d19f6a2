"""Tests for policy governance (hub/governance.py, `enclave policy`): a change takes effect only
when every member's admin approved it; a hand edit of the policy file refuses the start."""

from __future__ import annotations

import shutil
import tomllib

import pyotp
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import create_engine

from hub.accounts import AccountStore
from hub.audit import AuditLog
from hub.exceptions import GovernanceError
from hub.governance import Governance, parse_value, policy_values, resolve_key, rewrite
from output_filters.policy import DEFAULT_PATH, Policy, load_policy

PASSWORD = "a long enough password 42"
MEMBERS = ["K7Q2ZP", "C3M9XT", "U5RW8H"]


@pytest.fixture
def policy_file(tmp_path, monkeypatch):
    path = tmp_path / "policy.toml"
    shutil.copyfile(DEFAULT_PATH, path)
    monkeypatch.setenv("ENCLAVE_POLICY", str(path))
    return path


@pytest.fixture
def governance(isolated_state, policy_file, monkeypatch) -> Governance:
    """Admins of each member (adm-*), a consortium staff admin (staff), a researcher."""
    monkeypatch.setattr("hub.accounts._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    isolated_state.mkdir(parents=True, exist_ok=True)
    store = AccountStore(create_engine(f"sqlite:///{isolated_state / 'accounts.db'}"))
    for name, role, code in [
        ("adm-k12", "admin", "K7Q2ZP"),
        ("adm-cc", "admin", "C3M9XT"),
        ("adm-cc2", "admin", "C3M9XT"),
        ("adm-univ", "admin", "U5RW8H"),
        ("staff", "admin", None),
        ("rita", "researcher", "C3M9XT"),
    ]:
        store.add(name, role, code, PASSWORD)
    governance = Governance(lambda: list(MEMBERS), engine=store.engine, accounts=store, path=policy_file)
    governance.check_governed("test")  # the baseline
    return governance


def approve_all(governance: Governance, proposal_id: int):
    result = None
    for admin in ("adm-k12", "adm-cc", "adm-univ"):
        result = governance.decide(proposal_id, admin, True)
    return result


def test_the_first_start_records_the_baseline(governance, policy_file):
    assert governance.governed() == policy_values(load_policy(policy_file))
    assert [e.event for e in AuditLog().events()] == ["policy.baseline"]


def test_a_change_takes_effect_only_after_every_members_admin(governance, policy_file):
    proposal = governance.propose("staff", "threshold", "11", "align with the state's rule")
    assert (proposal.key, proposal.value, proposal.previous, proposal.status) == (
        "disclosure.threshold",
        11,
        10,
        "open",
    )
    for admin in ("adm-k12", "adm-cc"):
        proposal = governance.decide(proposal.id, admin, True)
        assert proposal.status == "open" and load_policy(policy_file).threshold == 10
    assert proposal.pending() == ["U5RW8H"]
    proposal = governance.decide(proposal.id, "adm-univ", True)
    assert proposal.status == "in_effect"
    assert load_policy(policy_file).threshold == 11
    assert "# A count cell with 0 < n < threshold is suppressed" in policy_file.read_text()  # comments kept
    assert governance.check_governed().threshold == 11
    events = [e.event for e in AuditLog().events()]
    assert events == [
        "policy.baseline",
        "policy.propose",
        "policy.approve",
        "policy.approve",
        "policy.approve",
        "policy.change",
    ]


@pytest.mark.parametrize(
    ("key", "value", "check"),
    [
        ("accounts.lockout_minutes", "30", lambda p: p.accounts.lockout_minutes == 30),
        ("password_max_age_days", "0", lambda p: p.accounts.password_max_age_days == 0),
        ("idle_timeout_minutes", "45", lambda p: p.accounts.idle_timeout_minutes == 45),
        ("totp_roles", '["admin"]', lambda p: p.accounts.totp_roles == ("admin",)),
        ("median", "exact", lambda p: p.median == "exact"),
        ("rate_band", "[2, 98]", lambda p: p.rate_band == (2.0, 98.0)),
    ],
    ids=["lockout", "password-age", "idle-timeout", "totp-roles", "median-word", "rate-band"],
)
def test_every_kind_of_key_can_be_governed(governance, policy_file, key, value, check):
    proposal = governance.propose("staff", key, value, "the consortium agreed")
    approve_all(governance, proposal.id)
    assert check(load_policy(policy_file))


def test_every_policy_key_is_governable():
    """A new policy setting is covered without further code: resolve_key knows every field."""
    keys = policy_values(Policy())
    assert len(keys) == len(Policy.__dataclass_fields__) - 1 + len(Policy().accounts.__dataclass_fields__)
    for key in keys:
        assert resolve_key(key) == key
        assert resolve_key(key.split(".", 1)[1]) == key


def test_a_rejection_ends_the_proposal(governance, policy_file):
    proposal = governance.propose("staff", "threshold", "5", "smaller cells")
    with pytest.raises(GovernanceError, match="needs a comment"):
        governance.decide(proposal.id, "adm-cc", False)
    proposal = governance.decide(proposal.id, "adm-cc", False, "5 is below our board's rule")
    assert proposal.status == "rejected"
    with pytest.raises(GovernanceError, match="rejected: there is nothing to approve"):
        governance.decide(proposal.id, "adm-k12", True)
    assert load_policy(policy_file).threshold == 10


REFUSALS = [
    # who, key, value, the error
    ("rita", "threshold", "11", "not an active admin"),
    ("staff", "nonsense", "1", "is not a policy setting"),
    ("staff", "threshold", "1", "threshold must be at least 2"),
    ("staff", "threshold", "ten", "must be a int"),
    ("staff", "threshold", "10", "already 10"),
    ("staff", "threshold", "[1,", "is not a value"),
]


@pytest.mark.parametrize(("who", "key", "value", "error"), REFUSALS, ids=[r[3] for r in REFUSALS])
def test_bad_proposals_are_refused(governance, who, key, value, error):
    with pytest.raises(GovernanceError, match=error):
        governance.propose(who, key, value, "reason")
    assert governance.history() == []


def test_only_member_admins_approve_once_each(governance):
    proposal = governance.propose("staff", "threshold", "11", "reason")
    with pytest.raises(GovernanceError, match="not the admin of a member institution"):
        governance.decide(proposal.id, "staff", True)
    with pytest.raises(GovernanceError, match="not an active admin"):
        governance.decide(proposal.id, "rita", True)
    governance.decide(proposal.id, "adm-cc", True)
    with pytest.raises(GovernanceError, match="C3M9XT has already decided"):
        governance.decide(proposal.id, "adm-cc2", True)


def test_a_hand_edit_is_detected_and_refused_naming_the_key(governance, policy_file):
    policy_file.write_text(policy_file.read_text().replace("threshold = 10", "threshold = 3"))
    with pytest.raises(GovernanceError) as refused:
        governance.check_governed()
    message = str(refused.value)
    assert "edited by hand" in message and "disclosure.threshold is 3 in the file, 10 as approved" in message
    assert "enclave policy propose" in message
    assert AuditLog().events()[-1].event == "policy.tamper"
    with pytest.raises(GovernanceError, match="edited by hand"):
        governance.propose("staff", "lockout_minutes", "30", "reason")


def test_a_comment_edit_is_not_a_change(governance, policy_file):
    policy_file.write_text("# reviewed by the board\n" + policy_file.read_text())
    assert governance.check_governed().threshold == 10


def test_the_hub_configuration_refuses_a_hand_edited_policy(governance, policy_file):
    """jupyterhub_config.py runs the same check: the hub does not start."""
    from traitlets.config import Config

    policy_file.write_text(policy_file.read_text().replace("lockout_failures = 5", "lockout_failures = 50"))
    namespace = {"get_config": Config}
    source = (DEFAULT_PATH.parent / "jupyterhub_config.py").read_text()
    with pytest.raises(GovernanceError, match="accounts.lockout_failures is 50 in the file"):
        exec(compile(source, "jupyterhub_config.py", "exec"), namespace)


def test_rewrite_sets_one_value_and_keeps_the_rest():
    text = '# top\n[disclosure]\nthreshold = 10\n# note\nmark = "*"\n[accounts]\nlockout_minutes = 15\n'
    changed = rewrite(text, "accounts.lockout_minutes", 30)
    assert changed == text.replace("lockout_minutes = 15", "lockout_minutes = 30")
    added = rewrite(text, "accounts.session_hours", 8.0)
    assert tomllib.loads(added)["accounts"] == {"lockout_minutes": 15, "session_hours": 8.0}
    assert parse_value("fuzzy") == "fuzzy" and parse_value("[1, 2]") == [1, 2] and parse_value("true") is True


def test_the_policy_commands(governance, policy_file, monkeypatch):
    import importlib

    monkeypatch.setattr(importlib.import_module("hub.cli.policy"), "_governance", lambda: governance)
    from hub.cli import enclave

    secrets = {name: pyotp.random_base32() for name in ("staff", "adm-k12", "adm-cc", "adm-univ")}
    for name, secret in secrets.items():
        governance.accounts.set_totp(name, secret)  # admins must have a second factor (policy totp_roles)

    def run(*args):
        return CliRunner().invoke(enclave, list(args))

    def run_as(name, *args):
        """As ``name``, proved: its password, then its current one-time code."""
        code = pyotp.TOTP(secrets[name]).now()
        return CliRunner().invoke(enclave, [*args, "--as", name, "--password-stdin"], input=f"{PASSWORD}\n{code}\n")

    made = run_as("staff", "policy", "propose", "threshold=11", "--reason", "state rule")
    assert made.exit_code == 0, made.output
    assert "Proposal 1: disclosure.threshold = 11 (now 10), by staff: open." in made.output
    assert "waiting for the admins of: K7Q2ZP, C3M9XT, U5RW8H" in made.output
    bad = run("policy", "propose", "threshold", "--reason", "x", "--as", "staff")  # refused before the password
    assert bad.exit_code == 1 and "KEY=VALUE" in bad.output
    for admin in ("adm-k12", "adm-cc", "adm-univ"):
        done = run_as(admin, "policy", "approve", "1")
        assert done.exit_code == 0, done.output
    assert "In effect" in done.output and "restart the hub" in done.output
    shown = run("policy", "show")
    assert "disclosure.threshold = 11" in shown.output
    history = run("policy", "history")
    assert "in_effect" in history.output and "reason: state rule" in history.output
    policy_file.write_text(policy_file.read_text().replace("threshold = 11", "threshold = 12"))
    refused = run("policy", "show")
    assert refused.exit_code == 1 and "edited by hand" in refused.output


def test_the_doctor_fails_on_a_hand_edited_policy(governance, policy_file, monkeypatch):
    import hub.governance
    from hub.doctor import check_governed_policy

    monkeypatch.setattr(hub.governance, "default_governance", lambda: governance)
    assert check_governed_policy()[0].level == "OK"
    policy_file.write_text(policy_file.read_text().replace("threshold = 10", "threshold = 4"))
    [check] = check_governed_policy()
    assert check.level == "FAIL" and "disclosure.threshold" in check.what


def test_a_hand_edited_policy_refuses_report_runs_and_the_release_review(governance, policy_file, monkeypatch):
    """The report kernels and the re-check read policy.toml too: they refuse a hand edit as the hub's
    start does, before any kernel starts or any request is checked."""
    import hub.governance
    from hub.cli import enclave
    from hub.release.desk import default_desk

    monkeypatch.setattr(hub.governance, "default_governance", lambda: governance)
    assert default_desk().threshold == 10
    policy_file.write_text(policy_file.read_text().replace("threshold = 10", "threshold = 3"))
    with pytest.raises(GovernanceError, match="disclosure.threshold is 3 in the file, 10 as approved"):
        default_desk(via="web")
    for command in (["report", "run", "any"], ["report", "batch", "any", "--institutions", "all"]):
        refused = CliRunner().invoke(enclave, [*command, "--out", str(policy_file.parent / "out")])
        assert refused.exit_code == 1 and "edited by hand" in refused.output, refused.output
    assert not (policy_file.parent / "out").exists()
    tampered = [e for e in AuditLog().events() if e.event == "policy.tamper"]
    assert [e.actor for e in tampered][0] == "release:web" and len(tampered) == 3
