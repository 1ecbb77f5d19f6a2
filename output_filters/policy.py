"""The consortium's policy: one file (``policy.toml``), one object, loaded in one place.

Everything that needs a threshold or an account rule receives a ``Policy``; nobody reads the
file twice. ``ENCLAVE_POLICY`` names another file (tests, other consortia).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from output_filters.exceptions import PolicyError

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "policy.toml"


@dataclass(frozen=True)
class AccountRules:
    """Rules for passwords and sign-in (principle 7)."""

    min_password_length: int = 12
    password_max_age_days: int = 90
    password_history: int = 5
    lockout_failures: int = 5
    lockout_minutes: int = 15
    totp_roles: tuple[str, ...] = ("admin", "reviewer")
    session_hours: float = 12.0
    token_max_age_days: int = 30
    idle_timeout_minutes: int = 60


@dataclass(frozen=True)
class Policy:
    """Disclosure rules (principle 6) and account rules (principle 7)."""

    threshold: int = 10
    show_zeros: bool = True
    mark: str = "*"
    protection_interval: float = 0.3
    suppression_work: int = 30_000
    median: str = "fuzzy"
    rate_band: tuple[float, float] = (5.0, 95.0)
    rate_band_below: int = 200
    magnitude_columns: tuple[str, ...] = ("units",)
    identifiers: tuple[str, ...] = ("student_key",)
    dominance_n: int = 2
    dominance_k: float = 90.0
    p_percent: float = 10.0
    accounts: AccountRules = field(default_factory=AccountRules)

    def __post_init__(self) -> None:
        if self.threshold < 2:
            raise PolicyError(f"[disclosure] threshold must be at least 2, not {self.threshold}")
        if not 0 < self.protection_interval < 1:
            raise PolicyError("[disclosure] protection_interval must be between 0 and 1 (0.3 means 30 %)")
        if self.suppression_work < 1:
            raise PolicyError("[disclosure] suppression_work must be at least 1 (the default is 30000)")
        if self.median not in ("exact", "fuzzy"):
            raise PolicyError(f'[disclosure] median must be "exact" or "fuzzy", not {self.median!r}')
        low, high = self.rate_band
        if not 0 <= low < high <= 100:
            raise PolicyError("[disclosure] rate_band must be two percentages, low below high, e.g. [5, 95]")
        if self.dominance_n < 1 or not 0 < self.dominance_k <= 100 or not 0 <= self.p_percent < 100:
            raise PolicyError("[disclosure] dominance_n >= 1, 0 < dominance_k <= 100 and 0 <= p_percent < 100")
        if not self.mark.strip():
            raise PolicyError("[disclosure] mark must be a visible string such as '*'")
        rules = self.accounts
        if rules.min_password_length < 8:
            raise PolicyError("[accounts] min_password_length must be at least 8")
        if rules.password_max_age_days < 0 or rules.password_history < 1:
            raise PolicyError("[accounts] password_max_age_days >= 0 (0: never) and password_history >= 1")
        if rules.lockout_failures < 1 or rules.lockout_minutes < 1:
            raise PolicyError("[accounts] lockout_failures and lockout_minutes must be at least 1")
        unknown = set(rules.totp_roles) - {"researcher", "author", "reviewer", "admin"}
        if unknown:
            roles = "researcher, author, reviewer, admin"
            raise PolicyError(f"[accounts] totp_roles: {sorted(unknown)} are not roles ({roles})")
        if rules.session_hours <= 0 or rules.token_max_age_days < 1 or rules.idle_timeout_minutes < 1:
            raise PolicyError("[accounts] session_hours > 0, token_max_age_days >= 1 and idle_timeout_minutes >= 1")


_current: tuple[tuple[str, int, int], Policy] | None = None


def current_policy() -> Policy:
    """The policy file's ``Policy``, read once per process and again only when the file changes
    (for entry points called without a policy, such as ``output_filters.protect``)."""
    global _current
    path = policy_path()
    try:
        status = path.stat()
        key = (str(path), status.st_mtime_ns, status.st_size)
    except OSError:
        key = (str(path), -1, -1)
    if _current is None or _current[0] != key:
        _current = (key, load_policy(path))
    return _current[1]


def policy_path() -> Path:
    return Path(os.environ.get("ENCLAVE_POLICY") or DEFAULT_PATH)


def load_policy(path: Path | None = None) -> Policy:
    """Read the policy file; every key is checked, unknown keys are errors."""
    path = Path(path) if path is not None else policy_path()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"policy file {path} does not exist; set ENCLAVE_POLICY or restore policy.toml") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{path}: not valid TOML: {error}") from None
    unknown = set(document) - {"disclosure", "accounts"}
    if unknown:
        raise PolicyError(f"{path}: unknown section(s) {sorted(unknown)}; allowed: [disclosure], [accounts]")
    disclosure = _section(path, "disclosure", document.get("disclosure", {}), Policy, skip={"accounts"})
    accounts = _section(path, "accounts", document.get("accounts", {}), AccountRules)
    try:
        return Policy(**disclosure, accounts=AccountRules(**accounts))
    except PolicyError as error:
        raise PolicyError(f"{path}: {error}") from None


# settings of earlier versions, and what replaced them
RETIRED = {
    "disclosure": {
        "suppression_seconds": (
            "a time limit gave one table different patterns on a busy machine and a quiet one; "
            "use suppression_work (counted work, never timed; the default 30000 takes up to about 2 s)"
        ),
    },
}


def _section(path: Path, name: str, values: dict, cls: type, skip: set[str] = frozenset()) -> dict:
    defaults = cls()
    known = [f.name for f in fields(cls) if f.name not in skip]
    if not isinstance(values, dict):
        raise PolicyError(f"{path}: {name} must be a [{name}] section with keys: {', '.join(known)}")
    checked = {}
    for key, value in values.items():
        if key in RETIRED.get(name, {}):
            raise PolicyError(f"{path}: [{name}] {key} is no longer a policy setting: {RETIRED[name][key]}")
        if key not in known:
            raise PolicyError(f"{path}: [{name}] {key} is not a policy setting; known: {', '.join(known)}")
        checked[key] = _typed(path, name, key, value, getattr(defaults, key))
    return checked


def _typed(path: Path, section: str, key: str, value, default):
    """``value`` converted to the type of ``default``, or a PolicyError naming the key."""
    wanted = type(default)
    if wanted is float and type(value) in (int, float):
        return float(value)
    if wanted is tuple and isinstance(value, list):
        kinds = {type(item) for item in default}
        if all(type(item) in kinds or (float in kinds and type(item) is int) for item in value):
            return tuple(float(v) if float in kinds else v for v in value)
    elif type(value) is wanted:
        return value
    example = list(default) if isinstance(default, tuple) else default
    kind = "list" if isinstance(default, tuple) else wanted.__name__
    raise PolicyError(f"{path}: [{section}] {key} must be a {kind} such as {example!r}, not {value!r}")
