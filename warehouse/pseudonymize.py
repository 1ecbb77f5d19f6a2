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

import numpy as np
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
        return hmac.digest(self._secret, text.encode(), hashlib.sha256).hex()[:KEY_LENGTH]

    def keys(self, identifiers: pd.DataFrame) -> pd.Series:
        """One key per row of ``identifiers`` (columns named by identifier kind).

        Rows with an ``ssid`` are keyed on it; the others on last name, first name and
        birth date. Each distinct name is normalized once and each distinct identity hashed
        once (a file holds many rows per student).
        """
        index = identifiers.index
        text = np.empty(len(identifiers), dtype=object)
        has_ssid = np.zeros(len(identifiers), dtype=bool)
        if "ssid" in identifiers:
            ssid = identifiers["ssid"].astype(str)
            has_ssid = (ssid.str.len() > 0).to_numpy()
            text[has_ssid] = ("ssid:" + ssid[has_ssid]).to_numpy(dtype=object)
        if not has_ssid.all():
            named = identifiers[~has_ssid]
            text[~has_ssid] = (
                "pii:"
                + _normalized(named["last_name"])
                + "|"
                + _normalized(named["first_name"])
                + "|"
                + named["birth_date"].astype(str)
            ).to_numpy(dtype=object)
        codes, unique = pd.factorize(text)
        hashed = np.array([self._key(value) for value in unique], dtype=object)
        return pd.Series(hashed[codes], index=index, dtype="str")


def _normalized(names: pd.Series) -> pd.Series:
    """``normalize_name`` of each value, computed once per distinct name."""
    codes, unique = pd.factorize(names.astype(str))
    normalized = np.array([normalize_name(name) for name in unique], dtype=object)
    return pd.Series(normalized[codes] if len(unique) else np.array([], dtype=object), index=names.index, dtype="str")
