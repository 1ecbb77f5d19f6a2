"""The release re-check applies the filter's rules to every table a file shows, secondary
suppression included, in every form: CSV, HTML, a notebook's HTML, stream and plain-text
outputs, and tables pandas printed as text (.txt)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hub.release.margins import exposes
from hub.release.recheck import neutral_members, recheck
from hub.release.text_tables import text_tables
from output_filters.engine.secondary import protect
from output_filters.policy import Policy
from warehouse.institutions import SEGMENTS

MEMBERS = neutral_members([("K7Q2ZP", "k12", "Riverside Unified"), ("C3M9XT", "cc", "Valley College")], SEGMENTS)
POLICY = Policy()


def shown(table: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """A table as the filter shows it: suppressed cells as the mark."""
    return table.astype(object).where(table.notna(), POLICY.mark)


def leaky() -> pd.DataFrame:
    """Asian × M (5) is suppressed alone in its row, which has a total: 25 − 20 gives it back."""
    frame = pd.DataFrame(
        {"F": [20, 30, 50], "M": ["*", 40, "*"], "All": [25, 70, 95]},
        index=pd.Index(["Asian", "Black or African American", "All"], name="ethnicity"),
    )
    frame.columns.name = "gender"
    return frame


def protected() -> pd.DataFrame:
    """A table the filter's secondary suppression protected (small cells and their cover)."""
    rng = np.random.default_rng(3)
    counts = pd.DataFrame(
        rng.integers(10, 60, (5, 4)),
        index=pd.Index([f"group {i}" for i in range(5)], name="group"),
        columns=pd.Index(["Fall 2023", "Spring 2024", "Fall 2024", "Spring 2025"], name="term"),
    )
    counts.iloc[0, 0], counts.iloc[3, 2] = 3, 6
    table = protect(counts, POLICY).table
    assert table.isna().sum().sum() >= 4  # two primaries and their cover
    return shown(table)


def leaky_series() -> pd.Series:
    return pd.Series(["*", 20, 25], index=pd.Index(["Asian", "White", "All"], name="ethnicity"), name="count")


def protected_series() -> pd.Series:
    table = protect(pd.Series([4, 30, 25], index=pd.Index(["Asian", "White", "Other"], name="ethnicity")), POLICY)
    return shown(table.table)


def notebook(*outputs: dict) -> bytes:
    cell = {"cell_type": "code", "source": "x", "metadata": {}, "outputs": list(outputs), "execution_count": 1}
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


def stream(*chunks: str) -> list[dict]:
    return [{"output_type": "stream", "name": "stdout", "text": chunk} for chunk in chunks]


def plain(text: str) -> dict:
    return {"output_type": "execute_result", "data": {"text/plain": text}, "metadata": {}, "execution_count": 1}


def html(frame: pd.DataFrame) -> dict:
    data = {"text/html": frame.to_html(), "text/plain": frame.to_string()}
    return {"output_type": "execute_result", "data": data, "metadata": {}, "execution_count": 1}


def printed(frame: pd.DataFrame | pd.Series) -> str:
    note = f"{POLICY.mark} cells suppressed: fewer than 10 records; more to protect the totals"
    return f"{frame}\n{note}\n"


def halves(text: str) -> tuple[str, str]:
    return text[: len(text) // 2], text[len(text) // 2 :]


LEAKS = [
    # id, file name, content, where the finding points
    ("csv", "t.csv", leaky().to_csv().encode(), "t.csv, the table, row 'Asian', column 'M'"),
    ("html", "t.html", leaky().to_html().encode(), "t.html, table 1, row 'Asian', column 'M'"),
    ("txt", "t.txt", printed(leaky()).encode(), "t.txt, text table 1, row 'Asian', column 'M'"),
    ("notebook-html", "n.ipynb", notebook(html(leaky())), "n.ipynb, cell 1: table 1, row 'Asian', column 'M'"),
    (
        "notebook-print",
        "n.ipynb",
        notebook(*stream("Enrollments\n", *halves(printed(leaky())))),
        "n.ipynb, cell 1: stdout text table 1, row 'Asian', column 'M'",
    ),
    (
        "notebook-series",
        "n.ipynb",
        notebook(plain(str(leaky_series()))),
        "n.ipynb, cell 1: text table 1, row 'Asian':",
    ),
    ("txt-markdown", "t.txt", leaky().to_markdown().encode(), "t.txt, text table 1, row 'Asian', column 'M'"),
    (
        "notebook-markdown",
        "n.ipynb",
        notebook({"output_type": "display_data", "data": {"text/markdown": leaky().to_markdown()}, "metadata": {}}),
        "n.ipynb, cell 1: text table 1, row 'Asian', column 'M'",
    ),
    ("txt-total-row", "t.txt", leaky().rename(index={"All": "Total"}).to_string().encode(), "row 'Asian', column 'M'"),
]


@pytest.mark.parametrize(("name", "data", "where"), [pytest.param(*r[1:], id=r[0]) for r in LEAKS])
def test_a_cell_the_totals_give_back_refuses_the_request(name, data, where):
    result = recheck({name: data}, MEMBERS, POLICY.threshold, POLICY)
    assert not result.passed
    [finding] = [f for f in result.findings if "recomputed from the table's totals" in str(f)]
    assert where in str(finding) and "(exactly)" in str(finding), result.findings
    assert " 5" not in finding.message  # the finding says how close, never the value


CLEAN = [
    ("csv", "t.csv", protected().to_csv().encode()),
    ("html", "t.html", protected().to_html().encode()),
    ("txt", "t.txt", printed(protected()).encode()),
    ("notebook-html", "n.ipynb", notebook(html(protected()))),
    ("notebook-print", "n.ipynb", notebook(*stream(*halves(printed(protected()))))),
    ("notebook-series", "n.ipynb", notebook(plain(str(protected_series())))),
    ("txt-markdown", "t.txt", protected().to_markdown().encode()),
]


@pytest.mark.parametrize(("name", "data"), [pytest.param(*r[1:], id=r[0]) for r in CLEAN])
def test_a_table_the_filter_protected_passes(name, data):
    result = recheck({name: data}, MEMBERS, POLICY.threshold, POLICY)
    assert result.passed, result.findings
    assert result.findings == []


def test_a_small_count_printed_as_text_is_a_finding():
    frame = pd.DataFrame({"students": [120, 4]}, index=pd.Index(["C3M9XT", "K7Q2ZP"], name="member"))
    for name, data in (("t.txt", frame.to_string()), ("n.ipynb", notebook(*stream(printed(frame))).decode())):
        result = recheck({name: data.encode()}, MEMBERS, POLICY.threshold, POLICY)
        assert not result.passed
        assert any("row 3, column 'students'" in str(f) and "a count of 4" in str(f) for f in result.findings)


def test_totals_that_do_not_add_up_are_a_note_for_the_reviewers():
    frame = leaky().copy()
    frame.loc["All", "All"] = 10  # the cells add up to more than the total
    result = recheck({"t.csv": frame.to_csv().encode()}, MEMBERS, POLICY.threshold, POLICY)
    [note] = [f for f in result.findings if "could not audit" in str(f)]
    assert not note.refuses and "totals do not add up" in note.message


def test_the_policys_threshold_and_interval_decide():
    """A pair of suppressed cells summing to 7 ([1, 6] each): safe at p = 0.3, not at p = 0.9."""
    frame = pd.DataFrame({"n": ["*", "*", 20, 27]}, index=pd.Index(["a", "b", "c", "All"], name="g"))
    assert recheck({"t.csv": frame.to_csv().encode()}, MEMBERS, 10, POLICY).passed
    strict = Policy(protection_interval=0.9)
    assert not recheck({"t.csv": frame.to_csv().encode()}, MEMBERS, 10, strict).passed
    assert exposes(3, 3, POLICY) and not exposes(1, 6, POLICY) and not exposes(12, 12, POLICY)


def test_pandas_text_tables_are_read_with_their_labels():
    frame = leaky()
    [table] = text_tables("Enrollments by group\n" + frame.to_string() + "\nName: x, dtype: int64\n")
    assert table[0] == ["ethnicity", "F", "M", "All"]
    assert table[2] == ["Black or African American", "30", "40", "70"]
    two = pd.DataFrame({"Fall 2023": [10, 20]}, index=pd.Index(["a", "b"], name="x"))
    two.columns.name = "term_of_enrollment"
    [read] = text_tables(two.to_string())
    assert read == [["x", "Fall 2023"], ["a", "10"], ["b", "20"]]
    [series] = text_tables(str(leaky_series()))
    assert series == [["ethnicity", ""], ["Asian", "*"], ["White", "20"], ["All", "25"]]
    assert text_tables("In 2023 we counted 5 of them.\nThat is all.\n") == []
    assert text_tables("step 1\nstep 2\nfold 10\nfold 20\n") == []  # prose, not a Series' four spaces


def test_grouped_row_labels_are_a_note_not_a_guess():
    """A MultiIndex's HTML leaves rows shorter than the header: not audited, said so."""
    frame = pd.DataFrame(
        {"n": [20, "*", 30, 40, 95]},
        index=pd.MultiIndex.from_tuples([("cc", "a"), ("cc", "b"), ("univ", "c"), ("univ", "d"), ("All", "")]),
    )
    result = recheck({"t.html": frame.to_html().encode()}, MEMBERS, POLICY.threshold, POLICY)
    assert result.passed
    [note] = result.findings
    assert "could not audit: grouped row labels" in note.message and not note.refuses


def test_a_report_the_filter_protected_passes_the_recheck(use_demo, tmp_path, monkeypatch):
    """Every table of an executed report (HTML, stream and plain-text outputs) passes: the
    re-check refuses no cell the filter protected."""
    from hub.release import margins
    from templates import runner

    audited = []

    def counted(published, policy):
        audited.append(published.shape)
        return margins_attack(published, policy)

    margins_attack = margins.attack
    monkeypatch.setattr(margins, "attack", counted)

    result = runner.run_report(
        "course_success", {"disaggregations": "ethnicity,gender"}, tmp_path / "out", on_events=lambda _e: None
    )
    files = {p.name: p.read_bytes() for p in (result.notebook, result.html)}
    checked = recheck(files, MEMBERS, POLICY.threshold)
    assert [f for f in checked.findings if f.refuses] == []
    executed = json.loads(files[result.notebook.name])
    shown = [o for c in executed["cells"] for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert any("*" in "".join(o["data"]["text/html"]) for o in shown)  # there were suppressed cells to audit
    assert audited, "no table with suppressed cells and a total reached the attacker"
