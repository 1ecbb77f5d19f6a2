"""Replace raw student identifiers with a keyed-HMAC student key.

The key links the same student across K-12, community college and university files without
storing who the student is: HMAC-SHA256, under a consortium secret, of the statewide student
identifier when the file has one, otherwise of the normalized name and birth date. Without
the secret the key cannot be recomputed from a name or an SSID; with the secret lost, new
uploads can no longer be linked to old ones (README: "Losing the student-key secret").
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import unicodedata

import pandas as pd

from warehouse.settings import read_or_create_secret

SECRET_NAME = "student-key"
KEY_LENGTH = 32  # hex characters: 128 bits
_NOT_LETTERS = re.compile(r"[^A-Z]")


def load_secret() -> bytes:
    """The HMAC secret: ``ENCLAVE_STUDENT_KEY`` (hex, for production) or var/secrets/student-key."""
    from_env = os.environ.get("ENCLAVE_STUDENT_KEY")
    if from_env:
        return from_env.strip().encode()
    return read_or_create_secret(SECRET_NAME)


def normalize_name(name: str) -> str:
    """Upper-case ASCII letters only: "José  O'Neil" → "JOSEONEIL"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NOT_LETTERS.sub("", ascii_name.upper())


class StudentKeyer:
    """Derives student keys from a frame's identifier columns."""

    def __init__(self, secret: bytes):
        self._secret = secret

    def _key(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()[:KEY_LENGTH]

    def keys(self, identifiers: pd.DataFrame) -> pd.Series:
        """One key per row of ``identifiers`` (columns named by identifier kind).

        Rows with an ``ssid`` are keyed on it; the others on last name, first name and
        birth date. Each distinct identity is hashed once.
        """
        ssid = identifiers["ssid"] if "ssid" in identifiers else pd.Series("", index=identifiers.index)
        by_name = (
            "pii:"
            + identifiers["last_name"].map(normalize_name)
            + "|"
            + identifiers["first_name"].map(normalize_name)
            + "|"
            + identifiers["birth_date"]
        )
        text = ("ssid:" + ssid).where(ssid.str.len() > 0, by_name)
        unique = pd.unique(text)
        lookup = dict(zip(unique, map(self._key, unique), strict=True))
        return text.map(lookup)
