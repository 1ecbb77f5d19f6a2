"""Password rules (principle 7): length, common passwords, reuse; argon2id hashing.

The list of common passwords is the 30,000 most common passwords that the zxcvbn package
ships (pinned in requirements.txt). A password is refused when it, or its letters without
the digits and symbols around them ("Password2024!" → "password"), is on the list, when it is
one character repeated, or when it contains the user's name.
"""

from __future__ import annotations

import re
from functools import cache

from argon2 import PasswordHasher, Type

from hub.exceptions import AccountError
from output_filters.policy import AccountRules


def hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's recommended parameters (RFC 9106, low memory)."""
    return PasswordHasher(type=Type.ID)


@cache
def common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def _core(password: str) -> str:
    return re.sub(r"^[^a-z]+|[^a-z]+$", "", password.lower())


def check_password(password: str, rules: AccountRules, name: str | None = None) -> None:
    """Raise AccountError saying what is wrong with ``password`` (never echoing it)."""
    if len(password) < rules.min_password_length:
        raise AccountError(
            f"the password is too short: the policy ([accounts] min_password_length) asks "
            f"for at least {rules.min_password_length} characters"
        )
    lowered = password.lower()
    core = _core(password)
    if lowered in common_passwords() or (len(core) >= 4 and core in common_passwords()):
        raise AccountError("the password is too common (it is on the list of common passwords); choose another")
    if len(set(password)) < 3:
        raise AccountError("the password repeats too few characters; choose another")
    if name and name.lower() in lowered:
        raise AccountError("the password contains the user name; choose another")
