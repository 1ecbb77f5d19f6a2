"""Tests for warehouse.adoption (principle 9), on SQLite and PostgreSQL: adopting a year's
element-set file records who and when; uploads refuse a year whose file is not adopted or
changed since (the extended file included) and leave the warehouse unchanged; files outside
the elements folder, misnamed, or not matching the warehouse schema cannot be adopted."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

import warehouse.elements
from tests.test_upload import KEYER, counts, course_row, write_csv
from warehouse.adoption import NotAdopted, adopt, adopted_element_set, current_adoption
from warehouse.db import connect
from warehouse.elements import ELEMENTS_DIR, load_element_set
from warehouse.exceptions import ElementSetError
from warehouse.institutions import add_institution
from warehouse.schema import element_adoptions
from warehouse.upload import upload


@pytest.fixture
def elements_dir(tmp_path, monkeypatch):
    """A private copy of the shipped element files, used as the elements folder."""
    directory = tmp_path / "elements"
    shutil.copytree(ELEMENTS_DIR, directory)
    monkeypatch.setattr(warehouse.elements, "ELEMENTS_DIR", directory)
    return directory


@pytest.fixture
def engine(warehouse_url, elements_dir):
    engine = connect()
    yield engine
    engine.dispose()


@pytest.fixture
def college(engine):
    return add_institution(engine, "Sierra Alta Community College", "cc")


def load(engine, college, tmp_path, year="2024-25"):
    path = write_csv(tmp_path / "courses.csv", [course_row(i) for i in range(20)])
    return upload(
        engine, institution=college.code, year=year, table="cc_courses", path=path, keyer=KEYER, loaded_by="t"
    )


def adoptions(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(element_adoptions))


def test_adopting_records_year_file_checksum_who_and_when(engine, elements_dir):
    before = datetime.now(UTC)
    adoption, previous = adopt(engine, elements_dir / "2024-25.toml", "alice")
    assert previous is None
    assert (adoption.year, adoption.file_name, adoption.adopted_by) == ("2024-25", "2024-25.toml", "alice")
    assert adoption.checksum == load_element_set("2024-25").checksum
    stored = current_adoption(engine, "2024-25")
    assert (stored.year, stored.checksum, stored.adopted_by) == ("2024-25", adoption.checksum, "alice")
    assert before <= stored.adopted_at <= datetime.now(UTC)
    assert current_adoption(engine, "2023-24") is None


def test_adopting_the_same_content_again_records_nothing(engine, elements_dir):
    first, _ = adopt(engine, elements_dir / "2024-25.toml", "alice")
    again, previous = adopt(engine, elements_dir / "2024-25.toml", "bob")
    assert again == previous == first
    assert adoptions(engine) == 1


def test_upload_for_a_year_that_is_not_adopted_is_refused_and_changes_nothing(engine, college, tmp_path):
    before = counts(engine)
    with pytest.raises(NotAdopted) as error:
        load(engine, college, tmp_path)
    message = str(error.value)
    assert "the element set for 2024-25" in message and "has not been adopted" in message
    assert "enclave elements adopt" in message and "2024-25.toml" in message
    assert counts(engine) == before


def test_adopted_year_loads(engine, college, tmp_path, elements_dir):
    adopt(engine, elements_dir / "2024-25.toml", "alice")
    assert load(engine, college, tmp_path).status == "loaded"


@pytest.mark.parametrize("edited", ["2024-25.toml", "2019-20.toml"], ids=["the-year-file", "the-file-it-extends"])
def test_an_element_file_changed_after_adoption_is_refused_until_adopted_again(
    engine, college, tmp_path, elements_dir, edited
):
    adopt(engine, elements_dir / "2024-25.toml", "alice")
    path = elements_dir / edited
    path.write_text(path.read_text() + "\n# edited after the annual meeting\n")
    before = counts(engine)

    with pytest.raises(NotAdopted) as error:
        load(engine, college, tmp_path)

    message = str(error.value)
    assert "changed after it was adopted on" in message and "by alice" in message
    assert edited in message and "enclave elements adopt" in message
    assert counts(engine) == before
    adoption, previous = adopt(engine, elements_dir / "2024-25.toml", "bob")
    assert previous.adopted_by == "alice" and adoption.adopted_by == "bob"
    assert adoptions(engine) == 2  # the history stays
    assert adopted_element_set(engine, "2024-25").year == "2024-25"
    assert load(engine, college, tmp_path).status == "loaded"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d, t: t / "2024-25.toml", ["element sets live in", "copy the file there, commit it"]),
        (lambda d, t: d / "draft.toml", ["named after its academic year"]),
        (lambda d, t: d / "2031-32.toml", ["no such file"]),
    ],
    ids=["outside-the-elements-folder", "misnamed", "missing"],
)
def test_files_that_cannot_be_adopted(engine, elements_dir, tmp_path, make, expected):
    (tmp_path / "2024-25.toml").write_text((elements_dir / "2024-25.toml").read_text())
    (elements_dir / "draft.toml").write_text((elements_dir / "2024-25.toml").read_text())
    with pytest.raises(ElementSetError) as error:
        adopt(engine, make(elements_dir, tmp_path), "alice")
    for part in expected:
        assert part in str(error.value)
    assert adoptions(engine) == 0


def test_an_element_set_that_does_not_match_the_warehouse_needs_a_migration_first(engine, elements_dir):
    path = elements_dir / "2019-20.toml"
    path.write_text(
        path.read_text().replace(
            'award = { type = "code"',
            'modality = { type = "code", codes = ["online", "in-person"] }\naward = { type = "code"',
        )
    )
    with pytest.raises(ElementSetError) as error:
        adopt(engine, elements_dir / "2024-25.toml", "alice")
    assert "cc_awards would store" in str(error.value) and "modality" in str(error.value)
    assert "schema migration must come first" in str(error.value)
    assert adoptions(engine) == 0
