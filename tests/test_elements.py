"""Tests for warehouse.elements: the year files load, extend 2019-20 and match the warehouse
schema; a broken element-set file is refused with an error naming the file and the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from warehouse.elements import (
    ELEMENTS_DIR,
    available_years,
    check_year,
    load_element_set,
    term_year,
)
from warehouse.exceptions import ElementSetError
from warehouse.schema import DATA_TABLES

YEARS = ["2019-20", "2020-21", "2021-22", "2022-23", "2023-24", "2024-25", "2025-26"]
LATER_YEARS = YEARS[1:]
TABLES = ["k12_enrollment", "cc_students", "cc_courses", "cc_awards", "univ_students"]


# ---- the element sets in the repository ----------------------------------------------------


def test_available_years_lists_every_year_file_oldest_first():
    assert available_years() == YEARS


@pytest.mark.parametrize("year", YEARS)
def test_every_year_file_loads(year):
    elements = load_element_set(year)
    assert elements.year == year
    assert elements.source == ELEMENTS_DIR / f"{year}.toml"
    assert elements.agreed  # every file records the date it was agreed
    assert list(elements.tables) == TABLES


@pytest.mark.parametrize("year", LATER_YEARS)
def test_later_years_extend_2019_20(year):
    document = tomllib.loads((ELEMENTS_DIR / f"{year}.toml").read_text(encoding="utf-8"))
    assert document["extends"] < year  # each file names an earlier year ...
    assert "tables" not in document  # ... and states no tables of its own
    assert load_element_set(year).tables == load_element_set("2019-20").tables


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("year", YEARS)
def test_stored_columns_match_the_warehouse_schema(year, table):
    """What the element set says is stored is exactly the warehouse table, in order."""
    elements = load_element_set(year).table(table)
    schema_columns = tuple(column.name for column in DATA_TABLES[table].columns if column.name != "batch_id")
    assert elements.stored_columns == schema_columns


def test_every_warehouse_table_has_elements():
    assert set(load_element_set("2019-20").tables) == set(DATA_TABLES)


@pytest.mark.parametrize("table", TABLES)
def test_identifier_columns_are_never_stored(table):
    elements = load_element_set("2019-20").table(table)
    identifiers = {column.name for column in elements.columns if column.identifier}
    assert identifiers, f"{table} has no identifier columns"
    assert identifiers.isdisjoint(elements.stored_columns)


def test_unknown_table_names_the_year_and_the_choices():
    with pytest.raises(ElementSetError) as error:
        load_element_set("2023-24").table("k12_grades")
    message = str(error.value)
    assert "'k12_grades'" in message and "2023-24.toml" in message and "cc_courses" in message


@pytest.mark.parametrize(
    ("term", "year"),
    [
        ("2024FA", "2024-25"),
        ("2025WI", "2024-25"),
        ("2025SP", "2024-25"),
        ("2025SU", "2024-25"),
        ("2025FA", "2025-26"),
        ("2000SP", "1999-00"),
        ("2099FA", "2099-00"),
    ],
    ids=["fall", "winter", "spring", "summer", "next-fall", "century-spring", "century-fall"],
)
def test_term_year(term, year):
    assert term_year(term) == year


# ---- year strings and directories ----------------------------------------------------------


@pytest.mark.parametrize("year", ["2024-26", "24-25", "2024-2025", "2024/25", "2024-25 ", ""])
def test_malformed_year_is_refused_with_its_value(year, tmp_path):
    with pytest.raises(ElementSetError) as error:
        load_element_set(year, directory=tmp_path)
    assert f"year {year!r} is not an academic year" in str(error.value)


@pytest.mark.parametrize("year", ["1999-00", "2024-25"])
def test_check_year_accepts_academic_years(year):
    assert check_year(year) == year


def test_available_years_ignores_other_files(tmp_path):
    for name in ("2021-22.toml", "2019-20.toml", "notes.toml", "2020-21.txt", "draft-2022-23.toml"):
        (tmp_path / name).write_text("")
    assert available_years(tmp_path) == ["2019-20", "2021-22"]
    assert available_years(tmp_path / "missing") == []


# ---- broken files --------------------------------------------------------------------------

GOOD_GENDER = 'gender = { type = "code", codes = "gender", required = true }'


def base_file(year: str = "2019-20", gender: str = GOOD_GENDER, year_line: str | None = None) -> str:
    """A small complete element set; ``gender`` is the line that defines its gender column."""
    return "\n".join(
        [
            year_line if year_line is not None else f'year = "{year}"',
            'agreed = "2019-06-14"',
            "",
            "[codes]",
            'gender = ["F", "M", "X"]',
            "",
            "[tables.people]",
            'segment = "k12"',
            'stores = ["student_key"]',
            "",
            "[tables.people.columns]",
            'ssid = { type = "string", identifier = "ssid", required = true, pattern = \'[0-9]{10}\' }',
            gender,
            "",
        ]
    )


def extends_file(year: str, parent: str) -> str:
    return f'year = "{year}"\nagreed = "2020-06-12"\nextends = "{parent}"\n'


def write(directory: Path, files: dict[str, str]) -> None:
    for year, text in files.items():
        (directory / f"{year}.toml").write_text(text, encoding="utf-8")


def test_the_small_file_used_below_is_valid(tmp_path):
    write(tmp_path, {"2019-20": base_file(), "2020-21": extends_file("2020-21", "2019-20")})
    base = load_element_set("2019-20", directory=tmp_path)
    assert base.table("people").column_names == ("ssid", "gender")
    assert base.table("people").columns[1].codes == ("F", "M", "X")
    assert base.table("people").stored_columns == ("institution", "year", "student_key", "gender")
    assert load_element_set("2020-21", directory=tmp_path).tables == base.tables


BROKEN = [
    pytest.param(
        {"2019-20": base_file()},
        "2021-22",
        ["no element set has been adopted for 2021-22", "2021-22.toml", "years with element sets: 2019-20"],
        id="year-without-element-set",
    ),
    pytest.param(
        {"2019-20": base_file() + "\n[tables.people\n"},
        "2019-20",
        ["2019-20.toml", "not valid TOML"],
        id="invalid-toml",
    ),
    pytest.param(
        {"2019-20": base_file(gender='gender = { type = "code", codes = "gender", colour = "red" }')},
        "2019-20",
        ["2019-20.toml", "[tables.people].columns.gender", "unknown keys ['colour']"],
        id="unknown-column-key",
    ),
    pytest.param(
        {"2019-20": base_file(gender='gender = { type = "text" }')},
        "2019-20",
        ["2019-20.toml", "[tables.people].columns.gender", "type 'text' is not one of"],
        id="unknown-type",
    ),
    pytest.param(
        {"2019-20": base_file(gender='gender = { codes = ["F", "M"] }')},
        "2019-20",
        ["2019-20.toml", "[tables.people].columns.gender", "type None is not one of"],
        id="missing-type",
    ),
    pytest.param(
        {"2019-20": base_file(gender='gender = { type = "code", codes = "genders" }')},
        "2019-20",
        ["2019-20.toml", "[tables.people].columns.gender", "code list 'genders' is not defined under [codes]"],
        id="undefined-code-list",
    ),
    pytest.param(
        {"2019-20": base_file(gender='gender = { type = "code" }')},
        "2019-20",
        ["2019-20.toml", "[tables.people].columns.gender", "a column of type code needs `codes`"],
        id="code-column-without-codes",
    ),
    pytest.param(
        {"2019-20": base_file(gender='gender = { type = "code", codes = [] }')},
        "2019-20",
        ["2019-20.toml", "[tables.people].columns.gender", "a column of type code needs `codes`"],
        id="code-column-with-empty-codes",
    ),
    pytest.param(
        {"2019-20": base_file(gender="gender = { type = \"string\", pattern = '[FMX' }")},
        "2019-20",
        ["2019-20.toml", "[tables.people].columns.gender", "pattern '[FMX' is not a regular expression"],
        id="bad-regex-pattern",
    ),
    pytest.param(
        {"2019-20": base_file(gender='gender = { type = "string", identifier = "gender" }')},
        "2019-20",
        ["2019-20.toml", "[tables.people].columns.gender", "identifier 'gender' is not one of"],
        id="unknown-identifier-kind",
    ),
    pytest.param(
        {
            "2019-20": base_file(),
            "2020-21": extends_file("2020-21", "2021-22"),
            "2021-22": extends_file("2021-22", "2019-20"),
        },
        "2020-21",
        ["2020-21.toml", "`extends` must name an earlier year", "'2021-22'"],
        id="extends-later-year",
    ),
    pytest.param(
        {"2019-20": base_file(), "2020-21": extends_file("2020-21", "2022-23")},
        "2020-21",
        ["2020-21.toml", "`extends` must name an earlier year", "'2022-23'"],
        id="extends-later-year-without-file",
    ),
    pytest.param(
        {"2020-21": extends_file("2020-21", "2020-21")},
        "2020-21",
        ["2020-21.toml", "`extends` must name an earlier year", "'2020-21'"],
        id="extends-itself",
    ),
    pytest.param(
        {"2020-21": extends_file("2020-21", "2018-19"), "2021-22": extends_file("2021-22", "2020-21")},
        "2021-22",
        ["no element set has been adopted for 2018-19", "2018-19.toml"],
        id="extends-missing-earlier-year",
    ),
    pytest.param(
        {"2020-21": base_file(year="2019-20")},
        "2020-21",
        ["2020-21.toml", "`year` must be '2020-21', found '2019-20'"],
        id="year-does-not-match-file-name",
    ),
    pytest.param(
        {"2019-20": base_file(year_line="")},
        "2019-20",
        ["2019-20.toml", "`year` must be '2019-20', found None"],
        id="year-missing",
    ),
    pytest.param(
        {"2019-20": 'year = "2019-20"\nagreed = "2019-06-14"\n'},
        "2019-20",
        ["2019-20.toml", "defines no [tables]"],
        id="no-tables",
    ),
    pytest.param(
        {"2019-20": base_file().replace('stores = ["student_key"]', 'stores = ["student_key", "ssid"]')},
        "2019-20",
        ["2019-20.toml", "[tables.people]", "stores ['ssid']"],
        id="stores-an-identifier",
    ),
]


@pytest.mark.parametrize(("files", "year", "expected"), BROKEN)
def test_broken_element_set_is_refused_naming_file_and_key(tmp_path, files, year, expected):
    write(tmp_path, files)
    with pytest.raises(ElementSetError) as error:
        load_element_set(year, directory=tmp_path)
    message = str(error.value)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
