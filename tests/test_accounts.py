"""Tests for the account store, the policy file's account rules, and the hub's authenticator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import create_engine, select, update

from hub.accounts import AccountStore, accounts
from hub.authenticator import EnclaveAuthenticator
from hub.cli import enclave
from hub.exceptions import AccountError
from output_filters.exceptions import PolicyError
from output_filters.policy import DEFAULT_PATH, AccountRules, load_policy

PASSWORD = "correct-horse-battery"
# Still argon2id, but cheap: the rules under test do not depend on the hashing cost.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def cheap_hashes(monkeypatch):
    monkeypatch.setattr("hub.accounts._hasher", CHEAP_HASHER)


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "accounts.db"


@pytest.fixture
def store(db_path) -> AccountStore:
    return AccountStore(create_engine(f"sqlite:///{db_path}"))


def row(store: AccountStore, name: str):
    with store.engine.connect() as conn:
        return conn.execute(select(accounts).where(accounts.c.name == name)).one()


def deactivate(store: AccountStore, name: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.name == name).values(active=False))


# ---- add and verify ----------------------------------------------------------------------


def test_verify_returns_the_account_for_the_right_password(store):
    created = store.add("alice", "researcher", "ABC234", PASSWORD)
    account = store.verify("alice", PASSWORD)
    assert account == created
    assert (account.name, account.role, account.institution, account.active) == (
        "alice",
        "researcher",
        "ABC234",
        True,
    )


def test_verify_refuses_a_wrong_password(store):
    store.add("alice", "researcher", "ABC234", PASSWORD)
    assert store.verify("alice", PASSWORD + "x") is None
    assert store.verify("alice", "") is None
    assert store.verify("alice", PASSWORD.upper()) is None


def test_verify_refuses_an_unknown_user(store):
    store.add("alice", "researcher", "ABC234", PASSWORD)
    assert store.verify("bob", PASSWORD) is None


def test_verify_refuses_a_deactivated_account_even_with_the_right_password(store):
    store.add("alice", "researcher", "ABC234", PASSWORD)
    deactivate(store, "alice")
    assert store.verify("alice", PASSWORD) is None
    assert store.get("alice").active is False
    assert row(store, "alice").last_login_at is None


def test_passwords_are_stored_only_as_argon2_hashes(store, db_path):
    passwords = {"alice": "plaintext-sentinel-one", "bob": "plaintext-sentinel-two"}
    store.add("alice", "researcher", "ABC234", passwords["alice"])
    store.add("bob", "admin", None, passwords["bob"])
    store.engine.dispose()
    raw = db_path.read_bytes()
    for name, password in passwords.items():
        assert password.encode() not in raw
        stored = row(store, name).password_hash
        assert stored.startswith("$argon2id$")
        assert password not in stored
    # Same password, two accounts: the salts differ, so do the hashes.
    store.add("carol", "researcher", "ABC234", passwords["alice"])
    assert row(store, "carol").password_hash != row(store, "alice").password_hash


def test_last_login_is_set_by_a_good_login_only(store):
    store.add("alice", "researcher", "ABC234", PASSWORD)
    assert row(store, "alice").last_login_at is None
    store.verify("alice", "wrong-password-here")
    assert row(store, "alice").last_login_at is None
    store.verify("alice", PASSWORD)
    first = row(store, "alice").last_login_at
    assert first is not None
    assert first >= row(store, "alice").created_at.replace(tzinfo=first.tzinfo)
    store.verify("alice", PASSWORD)
    assert row(store, "alice").last_login_at >= first


# ---- the rules of add ----------------------------------------------------------------------

ADD_CASES = [
    # id, name, role, institution, password, error fragments (None: the account is created)
    ("researcher-ok", "alice", "researcher", "ABC234", PASSWORD, None),
    ("name-with-digits-dash-underscore-ok", "a1-b_2", "author", "ABC234", PASSWORD, None),
    ("name-two-characters-ok", "ab", "researcher", "ABC234", PASSWORD, None),
    ("name-32-characters-ok", "a" * 32, "researcher", "ABC234", PASSWORD, None),
    ("admin-without-institution-ok", "root", "admin", None, PASSWORD, None),
    ("admin-with-institution-ok", "staff", "admin", "ABC234", PASSWORD, None),
    ("password-exactly-minimum-ok", "alice", "researcher", "ABC234", "plum-cider-4", None),
    ("name-uppercase", "Alice", "researcher", "ABC234", PASSWORD, ["user name", "lower-case"]),
    ("name-too-short", "a", "researcher", "ABC234", PASSWORD, ["user name", "2-32 characters"]),
    ("name-too-long", "a" * 33, "researcher", "ABC234", PASSWORD, ["user name", "2-32 characters"]),
    ("name-starts-with-digit", "1alice", "researcher", "ABC234", PASSWORD, ["user name", "lower-case letter"]),
    ("name-with-space", "al ice", "researcher", "ABC234", PASSWORD, ["user name", "'-' or '_'"]),
    ("name-empty", "", "researcher", "ABC234", PASSWORD, ["user name", "2-32 characters"]),
    ("role-unknown", "alice", "superuser", "ABC234", PASSWORD, ["role", "researcher, author, reviewer, admin"]),
    ("researcher-without-institution", "alice", "researcher", None, PASSWORD, ["institution", "--institution CODE"]),
    ("author-without-institution", "alice", "author", "", PASSWORD, ["institution", "--institution CODE"]),
    ("reviewer-without-institution", "alice", "reviewer", None, PASSWORD, ["institution", "--institution CODE"]),
    ("password-too-short", "alice", "researcher", "ABC234", "x" * 11, ["password", "min_password_length", "12"]),
    ("password-empty", "alice", "researcher", "ABC234", "", ["password", "min_password_length", "12"]),
    ("duplicate-name", "taken", "researcher", "ABC234", PASSWORD, ["'taken'", "already exists", "another name"]),
]


@pytest.mark.parametrize(
    ("name", "role", "institution", "password", "errors"),
    [pytest.param(*case[1:], id=case[0]) for case in ADD_CASES],
)
def test_add_rules(cheap_hashes, store, name, role, institution, password, errors):
    store.add("taken", "researcher", "ABC234", PASSWORD)
    if errors is None:
        account = store.add(name, role, institution, password)
        assert store.get(name) == account
        assert (account.role, account.institution, account.active) == (role, institution, True)
        assert store.verify(name, password) == account
        return
    with pytest.raises(AccountError) as raised:
        store.add(name, role, institution, password)
    for fragment in errors:
        assert fragment in str(raised.value)
    assert [a.name for a in store.list()] == ["taken"]


def test_a_duplicate_keeps_the_first_password(cheap_hashes, store):
    store.add("alice", "researcher", "ABC234", PASSWORD)
    with pytest.raises(AccountError):
        store.add("alice", "admin", None, "another-long-password")
    assert store.verify("alice", PASSWORD).role == "researcher"
    assert store.verify("alice", "another-long-password") is None


def test_store_rules_set_the_minimum(cheap_hashes, store):
    strict = AccountStore(store.engine, AccountRules(min_password_length=20))
    with pytest.raises(AccountError, match="at least 20 characters"):
        strict.add("alice", "researcher", "ABC234", "quartz-meadow-violi")
    assert strict.add("alice", "researcher", "ABC234", "quartz-meadow-violin").name == "alice"


def test_list_is_sorted_by_name_and_shows_status(cheap_hashes, store):
    for name in ("carol", "alice", "bob"):
        store.add(name, "researcher", "ABC234", PASSWORD)
    deactivate(store, "bob")
    assert [(a.name, a.active) for a in store.list()] == [("alice", True), ("bob", False), ("carol", True)]


# ---- the minimum length comes from the policy file ------------------------------------------


def write_policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_cli_takes_the_minimum_password_length_from_the_policy_file(cheap_hashes, tmp_path, monkeypatch):
    policy = write_policy(tmp_path, "[accounts]\nmin_password_length = 20\n")
    monkeypatch.setenv("ENCLAVE_POLICY", str(policy))
    runner = CliRunner()

    short = runner.invoke(
        enclave, ["user", "add", "root", "--role", "admin", "--password-stdin"], input="quartz-meadow-v\n"
    )
    assert short.exit_code == 1
    assert "min_password_length" in short.output
    assert "at least 20 characters" in short.output
    assert AccountStore().get("root") is None

    good = runner.invoke(
        enclave, ["user", "add", "root", "--role", "admin", "--password-stdin"], input="quartz-meadow-violin\n"
    )
    assert good.exit_code == 0, good.output
    assert "Created admin root." in good.output
    assert "quartz-meadow-violin" not in good.output
    assert AccountStore().verify("root", "quartz-meadow-violin").role == "admin"


def test_the_shipped_policy_asks_for_12_characters():
    assert DEFAULT_PATH.name == "policy.toml"
    policy = load_policy(DEFAULT_PATH)
    assert policy.accounts.min_password_length == 12
    assert load_policy() == policy  # ENCLAVE_POLICY is unset by the autouse fixture


def test_a_policy_file_sets_only_what_it_names(tmp_path):
    policy = load_policy(write_policy(tmp_path, "[disclosure]\nthreshold = 5\n"))
    assert policy.threshold == 5
    assert policy.accounts.min_password_length == AccountRules().min_password_length


POLICY_ERRORS = [
    # id, file text, fragments the message must contain besides the file's path
    ("unknown-section", "[limits]\nthreshold = 5\n", ["limits", "[disclosure], [accounts]"]),
    ("top-level-key", "threshold = 5\n", ["threshold", "unknown section"]),
    ("unknown-key-disclosure", "[disclosure]\nthreshhold = 5\n", ["[disclosure] threshhold", "threshold"]),
    ("unknown-key-accounts", "[accounts]\nmax_password_length = 64\n", ["[accounts] max_password_length"]),
    ("wrong-type-threshold-string", '[disclosure]\nthreshold = "10"\n', ["[disclosure] threshold", "int"]),
    ("wrong-type-threshold-bool", "[disclosure]\nthreshold = true\n", ["[disclosure] threshold", "int"]),
    ("wrong-type-show-zeros", "[disclosure]\nshow_zeros = 1\n", ["[disclosure] show_zeros", "bool"]),
    ("wrong-type-min-length-float", "[accounts]\nmin_password_length = 12.0\n", ["min_password_length", "int"]),
    ("section-not-a-table", "accounts = 12\n", ["accounts", "min_password_length"]),
    ("threshold-below-2", "[disclosure]\nthreshold = 1\n", ["threshold", "at least 2"]),
    ("threshold-negative", "[disclosure]\nthreshold = -3\n", ["threshold", "at least 2"]),
    ("blank-mark", '[disclosure]\nmark = " "\n', ["mark"]),
    ("min-length-below-8", "[accounts]\nmin_password_length = 6\n", ["min_password_length", "at least 8"]),
    ("not-toml", "[accounts\n", ["not valid TOML"]),
    (
        "retired-suppression-seconds",
        "[disclosure]\nsuppression_seconds = 2.0\n",
        ["[disclosure] suppression_seconds is no longer a policy setting", "use suppression_work"],
    ),
    ("suppression-work-zero", "[disclosure]\nsuppression_work = 0\n", ["suppression_work", "at least 1"]),
]


@pytest.mark.parametrize(("text", "fragments"), [pytest.param(*c[1:], id=c[0]) for c in POLICY_ERRORS])
def test_policy_errors_name_the_file_and_the_key(tmp_path, text, fragments):
    path = write_policy(tmp_path, text)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    message = str(raised.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_a_missing_policy_file_names_the_file_and_the_fix(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere.toml"
    monkeypatch.setenv("ENCLAVE_POLICY", str(missing))
    with pytest.raises(PolicyError) as raised:
        load_policy()
    assert str(missing) in str(raised.value)
    assert "ENCLAVE_POLICY" in str(raised.value)


# ---- the authenticator ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_db(tmp_path_factory) -> Path:
    """One account of each role and a deactivated one (the tests only add login times)."""
    path = tmp_path_factory.mktemp("auth") / "accounts.db"
    store = AccountStore(create_engine(f"sqlite:///{path}"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("hub.accounts._hasher", CHEAP_HASHER)
        store.add("res", "researcher", "ABC234", PASSWORD)
        store.add("auth", "author", "DEF567", PASSWORD)
        store.add("rev", "reviewer", "GHJ789", PASSWORD)
        store.add("boss", "admin", None, PASSWORD)
        store.add("gone", "researcher", "ABC234", PASSWORD)
    deactivate(store, "gone")
    store.engine.dispose()
    return path


@pytest.fixture
def authenticator(auth_db) -> EnclaveAuthenticator:
    return EnclaveAuthenticator(accounts_url=f"sqlite:///{auth_db}")


def login(authenticator: EnclaveAuthenticator, data):
    return asyncio.run(authenticator.authenticate(None, data))


@pytest.mark.parametrize(
    ("name", "groups"),
    [
        pytest.param("res", ["role-researcher", "institution-ABC234"], id="researcher"),
        pytest.param("auth", ["role-author", "institution-DEF567"], id="author"),
        # Reviewers and admins must enroll a second factor first (policy totp_roles): until
        # then their only group grants no scope.
        pytest.param("rev", ["enclave-pending"], id="reviewer-without-totp"),
        pytest.param("boss", ["enclave-pending"], id="admin-without-totp"),
    ],
)
def test_authenticate_a_good_login(authenticator, name, groups):
    assert login(authenticator, {"username": name, "password": PASSWORD}) == {
        "name": name,
        "admin": False,  # nobody is a JupyterHub admin: hub.roles grants what admins may do
        "groups": groups,
    }


def test_authenticate_normalizes_the_name(authenticator):
    assert login(authenticator, {"username": "RES", "password": PASSWORD})["name"] == "res"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"username": "res", "password": PASSWORD + "!"}, id="wrong-password"),
        pytest.param({"username": "nobody", "password": PASSWORD}, id="unknown-user"),
        pytest.param({"username": "gone", "password": PASSWORD}, id="deactivated"),
        pytest.param({"username": "", "password": PASSWORD}, id="blank-name"),
        pytest.param({"username": "res", "password": ""}, id="blank-password"),
        pytest.param({"username": "", "password": ""}, id="both-blank"),
        pytest.param({}, id="no-fields"),
        pytest.param(None, id="no-data"),
    ],
)
def test_authenticate_refuses(authenticator, data):
    assert login(authenticator, data) is None


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        pytest.param("res", True, id="active-researcher"),
        pytest.param("boss", True, id="active-admin"),
        pytest.param("gone", False, id="deactivated"),
        pytest.param("nobody", False, id="unknown"),
    ],
)
def test_check_allowed(authenticator, name, allowed):
    assert authenticator.check_allowed(name) is allowed


def test_authenticator_defaults_to_the_store_under_enclave_var(cheap_hashes, isolated_state):
    AccountStore().add("alice", "researcher", "ABC234", PASSWORD)
    authenticator = EnclaveAuthenticator()
    assert authenticator.accounts_url == f"sqlite:///{isolated_state.resolve() / 'accounts.db'}"
    assert login(authenticator, {"username": "alice", "password": PASSWORD})["name"] == "alice"
