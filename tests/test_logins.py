"""Password rules, lockout, expiry, history, temporary passwords and TOTP in the account store,
and the authenticator's per-source slow-down and safe logging (principle 7)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pyotp
import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, create_engine, insert, select, update

from hub.accounts import AccountStore, accounts
from hub.audit import AuditLog
from hub.authenticator import EnclaveAuthenticator, SourceThrottle, safe
from hub.exceptions import AccountError
from hub.passwords import check_password
from output_filters.exceptions import PolicyError
from output_filters.policy import AccountRules, load_policy

GOOD = "plum-cider-walnut-42"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    monkeypatch.setattr("hub.accounts._hasher", CHEAP)


@pytest.fixture
def store(tmp_path) -> AccountStore:
    store = AccountStore(create_engine(f"sqlite:///{tmp_path / 'accounts.db'}"))
    store.add("alice", "researcher", "ABC234", GOOD)
    return store


def set_column(store: AccountStore, name: str, **values) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.name == name).values(**values))


# ---- password rules ------------------------------------------------------------------------------

RULES = AccountRules()


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        pytest.param("short-one", "at least 12", id="too-short"),
        pytest.param("password1234", "too common", id="common-with-digits"),
        pytest.param("Password2024!", "too common", id="common-core-with-digits-and-symbol"),
        pytest.param("qwertyuiop1234", "too common", id="keyboard-row-with-digits"),
        pytest.param("aaaaaaaaaaaaaaaa", "too few characters", id="one-character-repeated"),
        pytest.param("alice-is-my-name-2", "user name", id="contains-the-name"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password, fragment):
    with pytest.raises(AccountError, match=fragment):
        check_password(password, RULES, "alice")


def test_a_long_uncommon_password_is_accepted():
    check_password(GOOD, RULES, "alice")


def test_hashes_are_argon2id(store):
    with store.engine.connect() as conn:
        stored = conn.execute(select(accounts.c.password_hash)).scalar()
    assert stored.startswith("$argon2id$") and GOOD not in stored
    from hub.passwords import hasher

    assert hasher().type is Type.ID


# ---- lockout ---------------------------------------------------------------------------------------


def test_five_failures_lock_the_account_for_fifteen_minutes(store):
    now = datetime.now(UTC)
    outcomes = [store.login("alice", "wrong password!", now=now) for _ in range(5)]
    assert [o.locked_now for o in outcomes] == [False, False, False, False, True]
    locked = store.login("alice", GOOD, now=now + timedelta(minutes=14))
    assert locked.account is None and "locked until" in locked.reason
    assert store.login("alice", GOOD, now=now + timedelta(minutes=16)).account is not None


def test_a_success_resets_the_failure_count(store):
    for _ in range(4):
        store.login("alice", "wrong password!")
    assert store.login("alice", GOOD).account is not None
    for _ in range(4):
        assert not store.login("alice", "wrong password!").locked_now


def test_unknown_names_and_disabled_accounts_fail_like_wrong_passwords(store):
    assert store.login("nobody", GOOD).account is None
    store.set_active("alice", False)
    assert store.login("alice", GOOD).account is None


def test_the_policy_sets_the_lockout(tmp_path):
    strict = AccountStore(
        create_engine(f"sqlite:///{tmp_path / 'a.db'}"), AccountRules(lockout_failures=2, lockout_minutes=60)
    )
    strict.add("bob", "researcher", "ABC234", GOOD)
    assert not strict.login("bob", "nope nope nope").locked_now
    assert strict.login("bob", "nope nope nope").locked_now
    assert strict.status("bob").locked_until > datetime.now(UTC) + timedelta(minutes=59)


# ---- expiry, temporary passwords, history ------------------------------------------------------


def test_a_password_older_than_the_policy_age_must_be_changed(store):
    assert store.pending_step("alice") is None
    set_column(store, "alice", password_changed_at=datetime.now(UTC) - timedelta(days=91))
    assert store.login("alice", GOOD).account is not None  # the login works ...
    assert "older than 90 days" in store.pending_step("alice")  # ... only to change it
    store.change_password("alice", GOOD + "-new")
    assert store.pending_step("alice") is None


def test_max_age_zero_never_expires(tmp_path):
    never = AccountStore(create_engine(f"sqlite:///{tmp_path / 'n.db'}"), AccountRules(password_max_age_days=0))
    never.add("bob", "researcher", "ABC234", GOOD)
    set_column(never, "bob", password_changed_at=datetime.now(UTC) - timedelta(days=3650))
    assert never.pending_step("bob") is None and never.expiring(30) == []


def test_a_reset_gives_a_temporary_password_that_must_be_changed(store):
    temporary = store.reset_password("alice")
    assert store.login("alice", GOOD).account is None
    assert store.login("alice", temporary).account is not None
    assert "temporary" in store.pending_step("alice")
    store.change_password("alice", "a-new-one-of-mine-7")
    assert store.pending_step("alice") is None


def test_the_last_five_passwords_cannot_be_reused(store):
    passwords = [f"{word}-harbor-lantern-{n}" for n, word in enumerate(["amber", "birch", "cedar", "delta", "ember"])]
    for password in passwords:
        store.change_password("alice", password)
    # The last five: ember (current), delta, cedar, birch, amber; GOOD came before them.
    for reused in passwords:
        with pytest.raises(AccountError, match="used before"):
            store.change_password("alice", reused)
    store.change_password("alice", GOOD)  # six passwords ago: allowed again


def test_expiring_lists_accounts_by_date(store):
    store.add("bob", "author", "ABC234", GOOD)
    set_column(store, "bob", password_changed_at=datetime.now(UTC) - timedelta(days=85))
    set_column(store, "alice", password_changed_at=datetime.now(UTC) - timedelta(days=95))
    assert [a.name for a, _ in store.expiring(7)] == ["alice", "bob"]
    assert [a.name for a, _ in store.expiring(0)] == ["alice"]


# ---- TOTP --------------------------------------------------------------------------------------------


def test_an_enrolled_account_needs_the_current_code_once(store):
    secret = pyotp.random_base32()
    store.set_totp("alice", secret)
    now = datetime.now(UTC)
    assert store.login("alice", GOOD, "", now=now).account is None
    assert (
        store.login("alice", GOOD, "123456" if pyotp.TOTP(secret).at(now) != "123456" else "1", now=now).account is None
    )
    code = pyotp.TOTP(secret).at(now)
    assert store.login("alice", GOOD, code, now=now).account is not None
    replay = store.login("alice", GOOD, code, now=now)
    assert replay.account is None and "used before" in replay.reason


@pytest.mark.parametrize(
    ("role", "required"),
    [("admin", True), ("reviewer", True), ("researcher", False), ("author", False)],
)
def test_totp_is_required_for_the_policy_roles(tmp_path, role, required):
    store = AccountStore(create_engine(f"sqlite:///{tmp_path / 't.db'}"))
    store.add("carol", role, None if role == "admin" else "ABC234", GOOD)
    step = store.pending_step("carol")
    assert (step is not None and "second factor" in step) is required
    store.set_totp("carol", pyotp.random_base32())
    assert store.pending_step("carol") is None


def test_a_reset_with_totp_removes_the_second_factor(store):
    store.set_totp("alice", pyotp.random_base32())
    store.reset_password("alice", reset_totp=True)
    assert store.status("alice").totp is False


def test_policy_rejects_unknown_totp_roles(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[accounts]\ntotp_roles = ["wizard"]\n')
    with pytest.raises(PolicyError, match="totp_roles"):
        load_policy(path)


# ---- an older account store ---------------------------------------------------------------------------


def test_an_account_store_from_before_gains_the_new_columns(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    old = MetaData()
    table = Table(
        "accounts",
        old,
        Column("name", String(32), primary_key=True),
        Column("role", String(16), nullable=False),
        Column("institution", String(8)),
        Column("password_hash", String(200), nullable=False),
        Column("active", Boolean, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("password_changed_at", DateTime(timezone=True), nullable=False),
        Column("last_login_at", DateTime(timezone=True)),
    )
    old.create_all(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(table).values(
                name="old",
                role="researcher",
                institution="ABC234",
                password_hash=CHEAP.hash(GOOD),
                active=True,
                created_at=now,
                password_changed_at=now,
            )
        )
    store = AccountStore(engine)
    assert store.login("old", GOOD).account.name == "old"
    assert store.status("old").failures == 0 and store.status("old").totp is False


# ---- the authenticator -----------------------------------------------------------------------------------


def test_the_source_throttle_doubles_after_the_free_failures():
    throttle = SourceThrottle(free=3, window=60, ceiling=4)
    for second in range(3):
        assert throttle.delay("10.0.0.1", now=second) == 0
        throttle.failed("10.0.0.1", now=second)
    delays = []
    for second in range(3, 7):
        delays.append(throttle.delay("10.0.0.1", now=second))
        throttle.failed("10.0.0.1", now=second)
    assert delays == [0.5, 1.0, 2.0, 4.0]
    assert throttle.delay("10.0.0.2", now=7) == 0  # another source is not slowed
    assert throttle.delay("10.0.0.1", now=200) == 0  # failures older than the window are forgotten


def test_log_lines_quote_the_name():
    assert safe("mallory\n[I] forged") == "'mallory\\n[I] forged'"
    assert len(safe("x" * 500)) <= 40


def test_the_authenticator_audits_success_failure_and_lockout(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ENCLAVE_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    AccountStore(create_engine(url)).add("dave", "researcher", "ABC234", GOOD)
    authenticator = EnclaveAuthenticator(accounts_url=url, source_free_failures=100)
    handler = SimpleNamespace(request=SimpleNamespace(remote_ip="127.0.0.7"))

    def login(password: str, name: str = "dave"):
        return asyncio.run(authenticator.authenticate(handler, {"username": name, "password": password}))

    assert login(GOOD)["groups"] == ["role-researcher", "institution-ABC234"]
    for _ in range(5):
        assert login("wrong password!") is None
    with caplog.at_level(logging.WARNING):
        assert login("x", name="eve\nforged") is None
    events = [(e.actor, e.event, e.details.get("source")) for e in AuditLog().events()]
    assert events[0] == ("dave", "login.success", "127.0.0.7")
    assert [e for _, e, _ in events].count("login.failure") == 5
    assert events[-1][:2] == ("dave", "login.lockout")
    assert "\n" not in "".join(record.getMessage() for record in caplog.records)


def test_enrollment_keeps_the_secret_only_with_its_current_code_and_uses_the_code_up(store):
    secret = pyotp.random_base32()
    now = datetime.now(UTC)
    assert not store.enroll_totp("alice", secret, "12345x", now=now)
    assert store.status("alice").totp is False
    code = pyotp.TOTP(secret).at(now)
    assert store.enroll_totp("alice", secret, code, now=now)
    assert store.login("alice", GOOD, code, now=now).account is None  # the enrollment code is spent
    later = now + timedelta(seconds=30)
    assert store.login("alice", GOOD, pyotp.TOTP(secret).at(later), now=later).account is not None
