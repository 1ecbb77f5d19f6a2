"""The six standard metrics on a tiny hand-made consortium whose answers are known.

Twelve students, two districts (D1, D2), two colleges (C1, C2) and one university (U1). Each
student's path is written beside their rows, and every expected cohort and numerator below is
worked out by hand from those paths (not by running the code). The metrics run here in plain
pandas, outside the filter (the filter is tested on its own, and the templates in the kernel).

- s01 D1 completer 2022-23 (F, Hispanic, poor, not EL) -> C1 fall 2023, first time: transfer-level
  math A, English W; spring 2024 again; 2024-25 at C1; associate degree 2025-26.
- s02 D1 completer 2022-23 (M, White): no college.
- s03 D1 completer 2022-23 (F, Asian): University U1 2023-24.
- s04 D2 grade 12 in 2022-23 without a diploma: not a completer.
- s05 D2 completer 2022-23 (M, Hispanic, EL): C2 spring 2024 (first term), transfer-level English P.
- s06 D2 completer 2022-23 (F, White): C1 fall 2024 only, more than 12 months after: not college-going.
- s07 C1 first time fall 2023 (no K-12 record): math C in spring 2024, English D; 12 units earned
  in 2023-24; not at a college in 2024-25, at U1 in 2024-25: transferred.
- s08 C1 first time fall 2023: F and W, nothing after.
- s09 C2 returning student (first time in 2021): 12 units A in 2023-24, then nowhere.
- s10 C2 first time fall 2023; spring 2024 at C1; math B in fall 2024 (second year) at C2;
  12 units by the end of 2024-25; U1 in 2025-26: transferred (cohort 2024-25).
- s11 C1 first time fall 2023: English A; 12 units in 2023-24; U1 2024-25 and a BA in 2025-26.
- s12 C2 first time fall 2024: math P; C2 again in fall 2025.
"""

from __future__ import annotations

import pandas as pd
import pytest

from templates.exceptions import MetricError
from templates.metrics import ALL, METRICS, NO_K12, _isin, answerable_years
from templates.tables import check_disaggregations, compute, scope

K12 = [  # student, district, year, grade, graduated, gender, ethnicity, poor, EL, disability
    ("s01", "D1", "2022-23", 12, True, "F", "Hispanic/Latino", True, False, False),
    ("s01", "D1", "2021-22", 11, None, "F", "Hispanic/Latino", True, False, False),
    ("s02", "D1", "2022-23", 12, True, "M", "White", False, False, True),
    ("s03", "D1", "2022-23", 12, True, "F", "Asian", False, False, False),
    ("s04", "D2", "2022-23", 12, False, "M", "White", True, False, False),
    ("s05", "D2", "2022-23", 12, True, "M", "Hispanic/Latino", True, True, False),
    ("s06", "D2", "2022-23", 12, True, "F", "White", False, False, False),
]
STUDENTS = [  # student, college, year, gender, ethnicity, first_term, first_time, promise grant
    ("s01", "C1", "2023-24", "F", "Hispanic/Latino", "2023FA", True, True),
    ("s01", "C1", "2024-25", "F", "Hispanic/Latino", "2023FA", True, True),
    ("s05", "C2", "2023-24", "M", "Hispanic/Latino", "2024SP", True, True),
    ("s06", "C1", "2024-25", "F", "White", "2024FA", True, False),
    ("s07", "C1", "2023-24", "M", "Black/African American", "2023FA", True, False),
    ("s08", "C1", "2023-24", "F", "White", "2023FA", True, True),
    ("s09", "C2", "2023-24", "M", "Asian", "2021FA", False, False),
    ("s10", "C2", "2023-24", "F", "Filipino", "2023FA", True, False),
    ("s10", "C1", "2023-24", "F", "Filipino", "2024SP", False, False),
    ("s10", "C2", "2024-25", "F", "Filipino", "2023FA", True, False),
    ("s11", "C1", "2023-24", "M", "White", "2023FA", True, False),
    ("s12", "C2", "2024-25", "X", "Two or More", "2024FA", True, True),
    ("s12", "C2", "2025-26", "X", "Two or More", "2024FA", True, True),
]
COURSES = [  # student, college, term, transfer level, math/English, units, grade
    ("s01", "C1", "2023FA", True, "M", 4, "A"),
    ("s01", "C1", "2023FA", True, "E", 4, "W"),
    ("s01", "C1", "2024SP", False, None, 3, "B"),
    ("s01", "C1", "2024FA", False, None, 4, "C"),
    ("s05", "C2", "2024SP", True, "E", 3, "P"),
    ("s06", "C1", "2024FA", False, None, 3, "W"),
    ("s07", "C1", "2023FA", True, "E", 4, "D"),
    ("s07", "C1", "2023FA", False, None, 4, "A"),
    ("s07", "C1", "2024SP", True, "M", 4, "C"),
    ("s08", "C1", "2023FA", True, "M", 4, "F"),
    ("s08", "C1", "2023FA", False, None, 4, "W"),
    ("s09", "C2", "2023FA", False, None, 3, "A"),
    ("s09", "C2", "2023FA", False, None, 3, "A"),
    ("s09", "C2", "2024SP", False, None, 3, "A"),
    ("s09", "C2", "2024SP", False, None, 3, "A"),
    ("s10", "C2", "2023FA", False, None, 4, "A"),
    ("s10", "C1", "2024SP", False, None, 4, "B"),
    ("s10", "C2", "2024FA", True, "M", 4, "B"),
    ("s11", "C1", "2023FA", True, "E", 4, "A"),
    ("s11", "C1", "2023FA", False, None, 4, "B"),
    ("s11", "C1", "2024SP", False, None, 4, "A"),
    ("s12", "C2", "2024FA", True, "M", 3, "P"),
    ("s12", "C2", "2025FA", False, None, 3, "NP"),
]
AWARDS = [("s01", "C1", "2025-26", "2026SP", "associate")]
UNIVERSITY = [  # student, year, degree
    ("s03", "2023-24", ""),
    ("s07", "2024-25", ""),
    ("s11", "2024-25", ""),
    ("s11", "2025-26", "BA"),
    ("s10", "2025-26", ""),
]


def academic_year(term: str) -> str:
    start = int(term[:4]) - (term[4:] != "FA")
    return f"{start}-{(start + 1) % 100:02d}"


def consortium(
    k12_rows=K12, student_rows=STUDENTS, course_rows=COURSES, award_rows=AWARDS, university_rows=UNIVERSITY
) -> dict[str, pd.DataFrame]:
    """The tables as kernels.data gives them; each row's record id names the student.

    Other rows give a consortium of their own (course ids numbered on after ``COURSES``'s)."""
    k12 = pd.DataFrame(
        k12_rows,
        columns=["student_key", "institution", "year", "grade_level", "graduated", "gender", "ethnicity"]
        + ["socioecon_disadvantaged", "english_learner", "disability"],
    )
    k12.index = k12["student_key"] + "@" + k12["year"]
    students = pd.DataFrame(
        student_rows,
        columns=["student_key", "institution", "year", "gender", "ethnicity", "first_term", "first_time"]
        + ["promise_grant"],
    )
    students.index = students["student_key"] + "@" + students["institution"] + "@" + students["year"]
    courses = pd.DataFrame(
        course_rows, columns=["student_key", "institution", "term", "transfer_level", "math_english", "units", "grade"]
    )
    courses["year"] = courses["term"].map(academic_year)
    first = 0 if course_rows is COURSES else len(COURSES)
    pairs = zip(courses.student_key, courses.term, strict=True)
    courses.index = [f"{s}@{t}#{first + i}" for i, (s, t) in enumerate(pairs)]
    awards = pd.DataFrame(award_rows, columns=["student_key", "institution", "year", "term", "award"])
    universities = pd.DataFrame(university_rows, columns=["student_key", "year", "degree"])
    universities["institution"] = "U1"
    return {
        "k12_enrollment": k12,
        "cc_students": students,
        "cc_courses": courses,
        "cc_awards": awards,
        "univ_students": universities,
    }


@pytest.fixture
def load():
    tables = consortium()
    return lambda table, columns: tables[table][list(columns)].copy()


def students_of(cohort: pd.DataFrame, outcome: str | None = None) -> set[str]:
    rows = cohort if outcome is None else cohort[cohort[outcome]]
    return {label.split("@")[0] for label in rows.index}


# (metric, years, cohort by year, numerators by outcome and year) — worked out by hand above.
EXPECTED = [
    (
        "college_going",
        ["2022-23"],
        {"2022-23": {"s01", "s02", "s03", "s05", "s06"}},
        {"enrolled": {"2022-23": {"s01", "s03", "s05"}}},
    ),
    (
        "transfer_level",
        ["2023-24", "2024-25"],
        {"2023-24": {"s01", "s05", "s07", "s08", "s10", "s11"}, "2024-25": {"s06", "s12"}},
        {
            "math": {"2023-24": {"s01", "s07"}, "2024-25": {"s12"}},
            "english": {"2023-24": {"s05", "s11"}, "2024-25": set()},
        },
    ),
    (
        "persistence",
        ["2023-24", "2024-25"],
        {"2023-24": {"s01", "s07", "s08", "s10", "s11"}, "2024-25": {"s06", "s12"}},
        {"persisted": {"2023-24": {"s01", "s07", "s10", "s11"}, "2024-25": set()}},
    ),
    (
        "completion",
        ["2023-24"],
        {"2023-24": {"s01", "s05", "s07", "s08", "s10", "s11"}},
        {"completed": {"2023-24": {"s01", "s11"}}},
    ),
    (
        "transfer",
        ["2023-24", "2024-25"],
        {"2023-24": {"s07", "s09", "s11"}, "2024-25": {"s10"}},
        {"transferred": {"2023-24": {"s07", "s11"}, "2024-25": {"s10"}}},
    ),
]


@pytest.mark.parametrize(("name", "years", "cohorts", "numerators"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_cohort_and_numerator_are_the_students_worked_out_by_hand(load, name, years, cohorts, numerators):
    metric = METRICS[name]
    cohort = metric.build(load, years)
    for year, expected in cohorts.items():
        assert students_of(cohort[cohort["period"] == year]) == expected, year
    assert set(cohort["period"]) == set(cohorts)
    for outcome, by_year in numerators.items():
        for year, expected in by_year.items():
            assert students_of(cohort[cohort["period"] == year], outcome) == expected, (outcome, year)


INSTITUTIONS = {"k12": ["D1", "D2"], "cc": ["C1", "C2"]}
SCOPES = [(m.name, code) for m in METRICS.values() for code in [*INSTITUTIONS[m.segment], "C9"]]
# One more student for these tests only (the by-hand answers above leave them out): s13, a
# returning student, earned 12 units at C1 in 2023-24, went on to C2 in 2024-25 and back to C1
# in 2025-26, so they never left the colleges: in no transfer cohort, though C1 alone never
# sees them at C2. Their 2023-24 row at C1 comes twice (as a key collision would make it).
MOVER_STUDENTS = [
    ("s13", "C1", "2023-24", "F", "Asian", "2021FA", False, False),
    ("s13", "C1", "2023-24", "F", "Asian", "2021FA", False, False),  # twice: a merge repeats their courses
    ("s13", "C2", "2024-25", "F", "Asian", "2021FA", False, False),
    ("s13", "C1", "2025-26", "F", "Asian", "2021FA", False, False),
]
MOVER_COURSES = [("s13", "C1", "2023FA", False, None, 4, "A")] * 3 + [("s13", "C2", "2024FA", False, None, 4, "B")]


@pytest.fixture
def load_with_mover():
    extra = consortium([], MOVER_STUDENTS, MOVER_COURSES, [], [])
    tables = {n: pd.concat([t, extra[n]]) if len(extra[n].index) else t for n, t in consortium().items()}
    assert all(tables["cc_students"][c].dtype == "str" for c in ("student_key", "year", "institution"))
    return lambda table, columns: tables[table][list(columns)].copy()


@pytest.mark.parametrize(("name", "code"), SCOPES, ids=[f"{n}-{c}" for n, c in SCOPES])
def test_one_institutions_cohort_is_the_consortiums_restricted_to_it(load_with_mover, name, code):
    """A report for one institution builds only that institution's cohort (following its
    students to any college or university); its rows, record ids, values and order are the
    consortium's cohort restricted to the institution."""
    load = load_with_mover
    metric = METRICS[name]
    years = answerable_years(metric, load)
    whole = metric.build(load, years)
    mine = metric.build(load, years, code)
    pd.testing.assert_frame_equal(mine, scope(whole, code))
    assert len(mine.index) > 0 or code == "C9"
    pd.testing.assert_frame_equal(metric.build(load, years, ALL), whole)
    if name == "transfer":
        assert "s13" not in students_of(whole) and len(whole.index) == 4  # s07 s09 s11; s10


def test_the_consortium_cohort_restricted_is_one_institutions_on_the_demo(use_demo):
    """The same on the demo consortium (thousands of students moving between members), for
    every metric, every year the data answer, every institution of its segment."""
    import json

    from warehouse.workspace import Workspace

    workspace = Workspace(None)
    manifest = json.loads((use_demo / "demo" / "manifest.json").read_text())
    for metric in METRICS.values():
        years = answerable_years(metric, workspace.load)
        whole = metric.build(workspace.load, years)
        codes = [m["code"] for m in manifest["members"] if m["segment"] == metric.segment]
        assert len(codes) >= 2 and set(whole["institution"]) == set(codes), metric.name
        for code in codes:
            mine = metric.build(workspace.load, years, code)
            assert len(mine.index) > 0 and mine[metric.outcomes[0].column].any(), (metric.name, code)
            pd.testing.assert_frame_equal(mine, scope(whole, code), obj=f"{metric.name} {code}")


@pytest.mark.parametrize(
    ("values", "among"),
    [
        (["a", "b", None, "c"], ["b", "c", "c", "d"]),
        (["a", "b", None], ["a", None]),
        (["a", "b"], []),
        ([], ["a"]),
        ([1, 2, 3], [2, 5]),
    ],
    ids=["text", "missing-matches-missing", "nothing-to-find", "empty", "numbers"],
)
def test_the_fast_membership_is_pandas_isin(values, among):
    values = pd.Series(values, index=[f"r{i}" for i in range(len(values))], name="key")
    values.attrs["mark"] = "kept"
    among = pd.Series(among, dtype=values.dtype if len(among) == 0 else None)
    found = _isin(values, among)
    pd.testing.assert_series_equal(found, values.isin(among))
    assert found.attrs == {"mark": "kept"}


def test_rates_by_period_and_institution(load):
    """compute: the denominators, numerators and rates of the report's first table, by hand."""
    metric = METRICS["transfer_level"]
    cohort = metric.build(load, ["2023-24", "2024-25"])
    whole = compute(metric, cohort, "ALL", [], ["2023-24", "2024-25"]).breakdowns[0]
    assert whole.students.to_dict() == {"2023-24": 6, "2024-25": 2}
    assert whole.counts["math"].to_dict() == {"2023-24": 2, "2024-25": 1}
    assert whole.table["english"].round(4).to_dict() == {"2023-24": round(2 / 6, 4), "2024-25": 0.0}
    c1 = compute(metric, cohort, "C1", [], ["2023-24", "2024-25"]).breakdowns[0]
    assert c1.students.to_dict() == {"2023-24": 4, "2024-25": 1}  # s01 s07 s08 s11; s06
    assert c1.table["math"].to_dict() == {"2023-24": 0.5, "2024-25": 0.0}
    c2 = compute(metric, cohort, "C2", [], ["2023-24", "2024-25"]).breakdowns[0]
    assert c2.table["english"].to_dict() == {"2023-24": 0.5, "2024-25": 0.0}  # s05 of s05, s10; s12

    going = METRICS["college_going"]
    d1 = compute(going, going.build(load, ["2022-23"]), "D1", [], ["2022-23"]).breakdowns[0]
    assert d1.table["enrolled"].round(4).to_dict() == {"2022-23": round(2 / 3, 4)}  # s01 s03 of s01 s02 s03


def test_disaggregations_take_labels_from_the_right_records(load):
    going = METRICS["college_going"]
    by_gender = compute(going, going.build(load, ["2022-23"]), "ALL", ["gender"], ["2022-23"]).breakdowns[1]
    # Female completers s01 s03 s06 (two went), male s02 s05 (one went).
    assert by_gender.students.loc["Female", "2022-23"] == 3 and by_gender.students.loc["Male", "All"] == 2
    assert by_gender.rates["enrolled"].loc["Female", "2022-23"] == pytest.approx(2 / 3)
    assert by_gender.rates["enrolled"].loc["Male", "2022-23"] == pytest.approx(1 / 2)

    level = METRICS["transfer_level"]
    cohort = level.build(load, ["2023-24"])
    learners = compute(level, cohort, "ALL", ["english_learner"], ["2023-24"]).breakdowns[1].students
    # s05 was an English learner in K-12; s01 was not; s07 s08 s10 s11 have no K-12 record.
    assert learners["2023-24"].to_dict() == {"No": 1, NO_K12: 4, "Yes": 1, "All": 6}
    poor = compute(level, cohort, "ALL", ["socioecon_disadvantaged"], ["2023-24"]).breakdowns[1].students
    assert poor["2023-24"].to_dict() == {"No": 3, "Yes": 3, "All": 6}  # promise grant: s01 s05 s08


def test_course_success_against_an_independent_count(load):
    metric = METRICS["course_success"]
    years = ["2023-24", "2024-25"]
    cohort = metric.build(load, years)
    whole = compute(metric, cohort, "ALL", [], years).breakdowns[0]
    courses = pd.DataFrame(COURSES, columns=["s", "c", "term", "tl", "me", "units", "grade"])
    courses = courses[courses.term.map(academic_year).isin(years)]
    seasons = {"FA": "Fall", "SP": "Spring", "SU": "Summer", "WI": "Winter"}
    label = courses.term.map(lambda t: f"{seasons[t[4:]]} {t[:4]}")
    truth = courses.grade.isin(["A", "B", "C", "P"]).groupby(label).agg(["size", "mean"])
    assert whole.students.to_dict() == truth["size"].to_dict()
    assert whole.table["success"].to_dict() == pytest.approx(truth["mean"].to_dict())
    # By hand: fall 2023 has 11 graded enrollments (s01 2, s07 2, s08 2, s09 2, s10 1, s11 2);
    # all but s01's W, s07's D, s08's F and W succeed: 7.
    assert whole.students["Fall 2023"] == 11 and whole.counts.loc["Fall 2023", "success"] == 7
    assert compute(metric, cohort, "ALL", [], years).periods == ["Fall 2023", "Spring 2024", "Fall 2024"]


def test_answerable_years_follow_the_data(load):
    assert answerable_years(METRICS["college_going"], load) == ["2022-23"]
    assert answerable_years(METRICS["completion"], load) == ["2023-24"]  # needs two later years
    assert answerable_years(METRICS["transfer"], load) == ["2023-24", "2024-25"]
    assert answerable_years(METRICS["course_success"], load) == ["2023-24", "2024-25", "2025-26"]


def test_an_unknown_disaggregation_names_the_choices():
    with pytest.raises(MetricError, match="'colour' is not a disaggregation; choose from ethnicity, gender"):
        check_disaggregations(["gender", "colour"])


def test_an_empty_cohort_is_a_clear_error(load):
    metric = METRICS["persistence"]
    with pytest.raises(MetricError, match="no students in the cohort for institution 'C9'"):
        compute(metric, metric.build(load, ["2023-24"]), "C9", [], ["2023-24"])


def test_a_table_the_filter_refuses_is_kept_with_its_reason_and_shown_as_such(monkeypatch):
    from output_filters.exceptions import DisclosureError
    from templates import report
    from templates.report import show
    from templates.tables import Refused, attempt

    def refuse():
        raise DisclosureError("this table would let a small cell be narrowed down", rule="linked tables")

    refused = attempt(refuse)
    assert refused == Refused("this table would let a small cell be narrowed down")
    assert attempt(lambda: 42) == 42
    shown = []
    monkeypatch.setattr(report, "display", lambda obj: shown.append(getattr(obj, "data", obj)))
    show(refused, lambda table: table)
    show(7, lambda table: table * 2)
    assert shown == [
        "*Not shown: the output filter refused this table.* this table would let a small cell be narrowed down",
        14,
    ]
