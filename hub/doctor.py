"""``enclave doctor``: checks a deployment and says what to fix.

Each check gives OK, WARN (fine for a loopback demo, not for real use) or FAIL (fix before
anyone logs in); the command fails when any check fails. What it checks: the isolation mode
the hub would choose; the modes and owners of var/ and the secrets; that no user's system
account can read the secrets, the databases or another user's home (tried for real, as that
account, when the hub runs as root); that the user servers' configuration cannot be written
by them; TLS in front; the policy and that it holds the approved values; the audit log's
chain; the idle culler; the proxy.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

import click

from hub import isolation
from hub.accounts import AccountStore
from hub.provisioning import server_account
from output_filters.exceptions import PolicyError
from output_filters.policy import load_policy
from warehouse.settings import REPO, var_dir

PRIVATE_FILES = ("warehouse.db", "accounts.db", "audit.db", "hub/jupyterhub.sqlite", "logs/hub.log")


@dataclass(frozen=True)
class Check:
    level: str  # OK, WARN, FAIL
    what: str
    fix: str = ""


def _readable_as(uid: int, gid: int, groups: list[int], paths: list[Path]) -> list[Path]:
    """Which of ``paths`` a process of ``uid`` can open for reading (tried in a child)."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: become the account, try each path, report by index
        os.close(read)
        try:
            os.setgid(gid)
            os.setgroups(groups)
            os.setuid(uid)
            found = []
            for index, path in enumerate(paths):
                try:
                    if path.is_dir():
                        os.listdir(path)
                    else:
                        with open(path, "rb") as handle:
                            handle.read(1)
                    found.append(str(index))
                except OSError:
                    pass
            os.write(write, ",".join(found).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = pipe.read()
    os.waitpid(child, 0)
    return [paths[int(i)] for i in answer.split(",") if i]


def check_isolation(var: Path) -> list[Check]:
    try:
        decided = isolation.decide(var)
    except isolation.IsolationError as error:
        return [Check("FAIL", str(error), "set ENCLAVE_ISOLATION=users or off")]
    if decided.mode == "users":
        return [Check("OK", f"isolation: {decided.reason}")]
    if decided.mode == "off":
        return [Check("WARN", f"isolation off: {decided.reason}", "unset ENCLAVE_ISOLATION and run the hub as root")]
    return [Check("FAIL", decided.reason, "see the reason; `make up` as root chooses an interpreter others can pass")]


def check_modes(var: Path) -> list[Check]:
    problems = isolation.mode_problems(var)
    secrets = var / "secrets"
    for path in sorted(secrets.glob("*")) if secrets.is_dir() else []:
        info = path.stat()
        if stat.S_IMODE(info.st_mode) & 0o077 or info.st_uid != os.geteuid():
            mode = stat.S_IMODE(info.st_mode)
            problems.append(f"{path} is mode {mode:o} owned by uid {info.st_uid} (chmod 600 {path})")
    if problems:
        return [Check("FAIL", problem, "run any `enclave` command as root, or the chmod shown") for problem in problems]
    return [Check("OK", f"modes of {var}, its databases, logs and secrets are private")]


def check_secrets_unreadable(var: Path) -> list[Check]:
    if os.geteuid() != 0:
        return [Check("WARN", "not root: whether user accounts can read the secrets was not tried")]
    if isolation.decide(var).mode != "users":
        return [Check("WARN", "no per-user accounts: every server shares one account")]
    targets = [var / name for name in PRIVATE_FILES if (var / name).exists()]
    targets += sorted((var / "secrets").glob("*")) + [var / "demo" / "credentials.txt"]
    targets = [t for t in targets if t.exists()]
    checks = []
    for account in [a for a in AccountStore().list() if a.active]:
        try:
            entry = pwd.getpwnam(server_account(account.name))
        except KeyError:
            continue
        homes = [h for h in (var / "users").glob("*") if h.name != account.name and h.is_dir()]
        groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
        readable = _readable_as(entry.pw_uid, entry.pw_gid, groups, targets + homes)
        for path in readable:
            checks.append(Check("FAIL", f"{entry.pw_name} can read {path}", f"chmod go-rwx {path}"))
    return checks or [Check("OK", "no user's system account can read the secrets, databases, logs or other homes")]


def check_server_config() -> list[Check]:
    checks = []
    for directory in ("config", "data", "lab/settings", "lab/workspaces"):
        path = REPO / "hub" / "user_server" / directory
        for item in [path, *path.rglob("*")]:
            info = item.stat()
            if info.st_mode & 0o022 or (info.st_uid != 0 and os.geteuid() == 0):
                fix = f"chown root {item}; chmod go-w {item}"
                checks.append(Check("FAIL", f"{item} can be changed by others", fix))
    return checks or [Check("OK", "user servers' configuration directories cannot be written by users")]


def check_tls() -> list[Check]:
    public = os.environ.get("ENCLAVE_PUBLIC_URL", "")
    if public.startswith("https://"):
        return [Check("OK", f"served behind TLS at {public} (Secure cookies, HSTS and security headers on)")]
    return [
        Check(
            "WARN",
            "no TLS in front: the hub listens on 127.0.0.1 over plain HTTP (fine for a demo on this machine)",
            "put a TLS-terminating proxy in front and set ENCLAVE_PUBLIC_URL=https://your.host",
        )
    ]


def check_policy() -> list[Check]:
    try:
        policy = load_policy()
    except PolicyError as error:
        return [Check("FAIL", f"policy: {error}", "fix the policy file")]
    rules = policy.accounts
    return [
        Check(
            "OK",
            f"policy loaded: threshold {policy.threshold}; passwords >= {rules.min_password_length} characters, "
            f"{rules.password_max_age_days or 'no'} days max age, lockout after {rules.lockout_failures}; "
            f"TOTP for {', '.join(rules.totp_roles) or 'nobody'}",
        )
    ]


def check_audit() -> list[Check]:
    """The audit log's chain holds (the kept head is the administrators' to check)."""
    from hub.audit import AuditLog

    log = AuditLog()
    problems = log.problems()
    if problems:
        return [Check("FAIL", f"audit log: {problems[0].message}", "enclave audit verify; restore from a backup")]
    head = log.head()
    count = head.id if head else 0
    return [Check("OK", f"audit log: {count} records, the chain holds (keep `enclave audit head` off this machine)")]


def check_governed_policy() -> list[Check]:
    """The policy file holds the approved values (without recording anything)."""
    from hub.governance import default_governance, policy_values

    governance = default_governance()
    expected = governance.governed()
    if expected is None:
        return [Check("OK", "policy governance: the first hub start records the policy as the baseline")]
    try:
        found = policy_values(load_policy(governance.path))
    except PolicyError:
        return []  # check_policy says what is wrong with the file
    changed = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
    if changed:
        return [
            Check(
                "FAIL",
                f"policy edited by hand: {', '.join(changed)} differ from the approved values; the hub will not start",
                "restore the approved values; change them with `enclave policy propose`",
            )
        ]
    return [Check("OK", "policy governance: every value is the approved one")]


def check_culler() -> list[Check]:
    if importlib.util.find_spec("jupyterhub_idle_culler") is None:
        return [Check("FAIL", "jupyterhub-idle-culler is not installed", "make install")]
    minutes = load_policy().accounts.idle_timeout_minutes
    return [Check("OK", f"idle culler on: servers idle for {minutes} minutes are stopped")]


def check_proxy() -> list[Check]:
    proxy = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
    if not proxy.exists():
        return [Check("FAIL", f"{proxy} is missing", "make install")]
    return [Check("OK", "configurable-http-proxy is installed")]


def run_checks(var: Path | None = None) -> list[Check]:
    var = var or var_dir()
    checks: list[Check] = []
    for check in (check_isolation, check_modes, check_secrets_unreadable):
        checks += check(var)
    for check in (
        check_server_config,
        check_tls,
        check_policy,
        check_governed_policy,
        check_audit,
        check_culler,
        check_proxy,
    ):
        checks += check()
    return checks


@click.command("doctor")
def doctor() -> None:
    """Check the deployment (isolation, modes, secrets, TLS, policy, culler) and say what to fix."""
    checks = run_checks()
    for check in checks:
        click.echo(f"{check.level:<4} {check.what}")
        if check.fix and check.level != "OK":
            click.echo(f"     fix: {check.fix}")
    failed = sum(check.level == "FAIL" for check in checks)
    if failed:
        raise click.ClickException(f"{failed} check(s) failed")
    click.echo("No check failed.")
