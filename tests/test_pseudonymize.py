"""Tests for warehouse.pseudonymize and the secret it keys with: the student key follows the
SSID, or the normalized name and birth date; it depends on the secret; the secret file is
created once, private, and refused when other users can read it."""

from __future__ import annotations

import re
import stat

import pandas as pd
import pytest

from warehouse.pseudonymize import KEY_LENGTH, SECRET_NAME, StudentKeyer, load_secret, normalize_name
from warehouse.settings import read_or_create_secret

SECRET = b"0123456789abcdef" * 4


def key(ssid: str = "", first: str = "Ana", last: str = "Reyes", birth: str = "2006-04-01", secret=SECRET) -> str:
    return keys([(ssid, first, last, birth)], secret)[0]


def keys(people: list[tuple[str, str, str, str]], secret: bytes = SECRET) -> list[str]:
    frame = pd.DataFrame(people, columns=["ssid", "first_name", "last_name", "birth_date"])
    return list(StudentKeyer(secret).keys(frame))


# ---- the key -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last", "birth"),
    [("Ana", "Reyes", "2006-04-01"), ("Bo", "Li", "2007-01-09"), ("", "", "")],
    ids=["same-person", "other-name-and-birth", "blank-name"],
)
def test_same_ssid_gives_same_key_whatever_the_name(first, last, birth):
    assert key("1234567890", first, last, birth) == key("1234567890")


def test_different_ssids_give_different_keys():
    assert key("1234567890") != key("1234567891")


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        (("José", "O'Neil"), ("JOSE", "ONEIL")),
        (("josé", "o'neil"), ("JOSE", "ONEIL")),
        (("  Ana María ", "De La Cruz"), ("ANAMARIA", "DELACRUZ")),
        (("Zoë", "Müller-Lüdenscheidt"), ("ZOE", "MULLERLUDENSCHEIDT")),
        (("Nguyễn", "Thị"), ("NGUYEN", "THI")),
        (("Mary-Jo", "St. John"), ("MARYJO", "STJOHN")),
    ],
    ids=["accent-apostrophe", "lower-case", "spaces", "umlaut-hyphen", "vietnamese", "punctuation"],
)
def test_name_key_ignores_accents_case_spaces_and_punctuation(written, canonical):
    assert key("", *written) == key("", *canonical)


def test_normalize_name():
    assert normalize_name("José  O'Neil") == "JOSEONEIL"


@pytest.mark.parametrize(
    "other",
    [("", "Ana", "Reyes", "2006-04-02"), ("", "Ana", "Reyez", "2006-04-01"), ("", "Reyes", "Ana", "2006-04-01")],
    ids=["other-birth-date", "other-last-name", "first-and-last-swapped"],
)
def test_name_key_tells_people_apart(other):
    assert key("") != key(*other)


def test_ssid_key_differs_from_the_name_key_of_the_same_person():
    assert key("1234567890") != key("")


def test_rows_without_ssid_are_keyed_on_name_when_others_have_one():
    mixed = keys([("1234567890", "Ana", "Reyes", "2006-04-01"), ("", "Ana", "Reyes", "2006-04-01")])
    assert mixed == [key("1234567890"), key("")]


def test_a_frame_without_an_ssid_column_is_keyed_on_names():
    frame = pd.DataFrame({"first_name": ["Ana"], "last_name": ["Reyes"], "birth_date": ["2006-04-01"]})
    assert list(StudentKeyer(SECRET).keys(frame)) == [key("")]


@pytest.mark.parametrize("ssid", ["1234567890", ""], ids=["ssid", "name"])
def test_a_different_secret_gives_different_keys(ssid):
    assert key(ssid) != key(ssid, secret=b"another secret")


def test_keys_are_32_hex_characters_and_keep_row_order():
    people = [(f"{1000000000 + i}", "Ana", "Reyes", "2006-04-01") for i in range(50)]
    people += [("", f"Ana{chr(65 + i)}", "Reyes", "2006-04-01") for i in range(26)]
    result = keys(people)
    assert KEY_LENGTH == 32
    assert all(re.fullmatch(r"[0-9a-f]{32}", k) for k in result)
    assert len(set(result)) == len(people)
    assert result[7] == key("1000000007")


def test_keys_keep_the_frame_index():
    frame = pd.DataFrame(
        {"ssid": ["1234567890", ""], "first_name": ["A", "B"], "last_name": ["C", "D"], "birth_date": ["", ""]},
        index=[10, 20],
    )
    assert list(StudentKeyer(SECRET).keys(frame).index) == [10, 20]


# ---- the secret ----------------------------------------------------------------------------


def test_environment_secret_overrides_the_file(isolated_state, monkeypatch):
    file_secret = read_or_create_secret(SECRET_NAME)
    monkeypatch.setenv("ENCLAVE_STUDENT_KEY", " ab12cd34 \n")
    assert load_secret() == b"ab12cd34"
    assert load_secret() != file_secret


def test_environment_secret_creates_no_file(isolated_state, monkeypatch):
    monkeypatch.setenv("ENCLAVE_STUDENT_KEY", "ab12cd34")
    load_secret()
    assert not (isolated_state / "secrets" / SECRET_NAME).exists()


def test_secret_file_is_created_once_with_mode_600(isolated_state):
    first = load_secret()
    path = isolated_state / "secrets" / SECRET_NAME
    assert re.fullmatch(rb"[0-9a-f]{64}", first)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    mtime = path.stat().st_mtime_ns
    assert load_secret() == first
    assert read_or_create_secret(SECRET_NAME) == first
    assert path.stat().st_mtime_ns == mtime
    assert [p.name for p in path.parent.iterdir()] == [SECRET_NAME]  # no temporary file left


def test_secrets_of_different_names_differ(isolated_state):
    assert read_or_create_secret("one") != read_or_create_secret("two")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604], ids=["644", "640", "604"])
def test_secret_readable_by_others_is_refused_with_the_chmod_fix(isolated_state, mode):
    path = isolated_state / "secrets" / SECRET_NAME
    path.parent.mkdir(parents=True)
    path.write_bytes(b"cafe" * 16)
    path.chmod(mode)
    with pytest.raises(PermissionError) as error:
        load_secret()
    assert f"run `chmod 600 {path}`" in str(error.value)
    assert path.read_bytes() == b"cafe" * 16  # left as it was
    path.chmod(0o600)
    assert load_secret() == b"cafe" * 16
