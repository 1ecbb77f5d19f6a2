"""The consortium's standard metrics, each defined once: cohort, numerator, denominator,
disaggregations, and the methods text that says so.

The report templates (``templates/*.ipynb``), the explorer (``notebooks/explorer.ipynb``) and
the runner all import this module, so a metric means the same thing
wherever it is shown. A metric's ``build(load, years, institution)`` returns its cohort as one
record-level frame: a row per member of the cohort (a student; for course success an enrollment), indexed
by the record ids of the table it is drawn from, with the columns

- ``institution``: the member the row belongs to (the college, the district);
- ``period``: the cohort year (or the term), as reports label it;
- one boolean column per outcome (``Metric.outcomes``): the numerator's condition;
- one column per disaggregation (``DISAGGREGATIONS``), with readable labels.

``build`` for one institution reads only what that institution's cohort needs: the cohort's own
rows, and the later records of *its students* that the metric follows (a completer's courses at
any college, a college student's university years), so one college's report costs a fraction of
the consortium's. Its rows are exactly the consortium's cohort restricted to the institution,
with the same record ids, values and order (``tests/test_metrics.py`` checks each metric).

Everything is plain pandas. In the secure kernel the output filter protects every aggregate of
the cohort when it is made (``compute``: counts, then rates from those counts), so nothing here
suppresses anything by hand; in the tests the same code runs on a hand-made consortium.
Definitions follow California's published measures (CDE's college-going rate, the
AB 1705 / Student Success Metrics of the community colleges); each metric's ``notes`` say where
the consortium's data make them differ.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.arrays import ArrowStringArray

from templates.periods import shift, term_index, term_label, term_year, year_label

Loader = Callable[[str, list[str]], pd.DataFrame]  # kernels.data.load, or a test's tables
SUCCESS = ("A", "B", "C", "P")  # grades that pass a course
EARNED = ("A", "B", "C", "D", "P")  # grades that earn its units
GENDERS = {"F": "Female", "M": "Male", "X": "Non-binary"}
NO_K12 = "No K-12 record"
ALL = "ALL"  # the institution parameter for the whole consortium


@dataclass(frozen=True)
class Disaggregation:
    name: str  # the parameter value
    label: str  # how reports name it


DISAGGREGATIONS = {
    d.name: d
    for d in (
        Disaggregation("ethnicity", "Race/ethnicity"),
        Disaggregation("gender", "Gender"),
        Disaggregation("socioecon_disadvantaged", "Socioeconomically disadvantaged"),
        Disaggregation("english_learner", "English learner"),
        Disaggregation("disability", "Disability"),
    )
}


@dataclass(frozen=True)
class Outcome:
    column: str
    label: str  # a short column heading: "Transfer-level math"
    numerator: str  # the methods text


@dataclass(frozen=True)
class Metric:
    """One standard metric. ``years(present)`` lists the cohort years the data can answer,
    given the academic years present in each table (``{table: {"2023-24", ...}}``)."""

    name: str  # the template's name
    title: str
    segment: str  # the segment of the institutions it reports on: k12, cc
    unit: str  # what the cohort counts: "students", "enrollments"
    period: str  # the heading of the period column
    cohort: str  # methods: who is in the cohort (the denominator)
    outcomes: tuple[Outcome, ...]
    tables: tuple[str, ...]  # the tables it reads
    build: Callable[[Loader, Sequence[str], str], pd.DataFrame]  # (load, years, institution or ALL)
    years: Callable[[Mapping[str, set[str]]], list[str]]
    sources: Mapping[str, str] = field(default_factory=dict)  # disaggregation -> where it comes from
    notes: tuple[str, ...] = ()

    def outcome(self, column: str) -> Outcome:
        return next(o for o in self.outcomes if o.column == column)


def _keys(students: pd.Series, years: pd.Series | str) -> pd.Series:
    """One text key per (student, year), to find a student's records of a given year."""
    return students + "|" + years


def _isin(values: pd.Series, among: pd.Series) -> pd.Series:
    """``values.isin(among)``, the same Series, for text columns by pyarrow's hash set.

    pandas 3 looks text up in text by first making each value of ``among`` a Python object:
    seconds for the million course records a student key is looked up in, most of a report's
    time. Other dtypes go to pandas."""
    if not (isinstance(values.array, ArrowStringArray) and isinstance(among.array, ArrowStringArray)):
        return values.isin(among)
    mine, theirs = pa.array(values.array), pa.array(among.array)
    found = pc.is_in(mine, value_set=theirs.cast(mine.type))
    return pd.Series(np.asarray(found, dtype=bool), index=values.index, name=values.name).__finalize__(values)


def _mine(rows: pd.DataFrame, institution: str) -> pd.DataFrame:
    """The rows of one institution (all of them for ``ALL``)."""
    return rows if institution == ALL else rows[rows["institution"] == institution]


def _of(records: pd.DataFrame, students: pd.Series) -> pd.DataFrame:
    """The records of ``students`` at any institution: the later records a metric follows its
    cohort to. Nobody else's records can change a cohort member's outcome; dropping them first
    keeps the string work below to the cohort's size."""
    return records[_isin(records["student_key"], students)]


def _present(present: Mapping[str, set[str]], *tables: str) -> set[str]:
    found = [set(present.get(t, set())) for t in tables]
    return set.intersection(*found) if found else set()


# ---- disaggregations ---------------------------------------------------------------------------


def _yes_no(flags: pd.Series) -> pd.Series:
    return flags.map({True: "Yes", False: "No"})


def _k12_groups(rows: pd.DataFrame) -> dict[str, pd.Series]:
    """Disaggregations of K-12 rows, from the row itself."""
    return {
        "ethnicity": rows["ethnicity"],
        "gender": rows["gender"].map(GENDERS),
        "socioecon_disadvantaged": _yes_no(rows["socioecon_disadvantaged"]),
        "english_learner": _yes_no(rows["english_learner"]),
        "disability": _yes_no(rows["disability"]),
    }


def _college_groups(rows: pd.DataFrame, load: Loader) -> dict[str, pd.Series]:
    """Disaggregations of college students: their own row, and their K-12 records."""
    k12 = load("k12_enrollment", ["student_key", "english_learner", "disability"])
    in_k12 = _isin(rows["student_key"], k12["student_key"])

    def ever(flag: str) -> pd.Series:
        found = _isin(rows["student_key"], k12["student_key"][k12[flag]])
        return found.map({True: "Yes", False: "No"}).where(in_k12, NO_K12)

    return {
        "ethnicity": rows["ethnicity"],
        "gender": rows["gender"].map(GENDERS),
        "socioecon_disadvantaged": _yes_no(rows["promise_grant"]),
        "english_learner": ever("english_learner"),
        "disability": ever("disability"),
    }


COLLEGE_SOURCES = {
    "socioecon_disadvantaged": "a California College Promise Grant in the cohort year (the colleges' "
    "measure of economic disadvantage)",
    "english_learner": f"an English learner in any K-12 year of the consortium's records; students with no "
    f"K-12 record in the consortium are shown as “{NO_K12}”",
    "disability": f"a disability recorded in any K-12 year of the consortium's records (“{NO_K12}” as above)",
}
STUDENT_COLUMNS = ["institution", "year", "student_key", "gender", "ethnicity", "first_term", "first_time"]


def _cohort(rows: pd.DataFrame, period: pd.Series, outcomes: dict[str, pd.Series], groups: dict) -> pd.DataFrame:
    """The cohort frame (module docstring): a column assignment per part, rows kept."""
    frame = rows[["institution"]].copy()
    frame["period"] = period
    for name, values in {**outcomes, **groups}.items():
        frame[name] = values
    return frame


def _first_time(students: pd.DataFrame, years: Sequence[str]) -> pd.DataFrame:
    """First-time college students, each on the row of the year they started."""
    students = students[students["year"].isin(list(years)) & students["first_time"]]
    return students[term_year(students["first_term"]) == students["year"]]


# ---- the metrics ------------------------------------------------------------------------------


def college_going(load: Loader, years: Sequence[str], institution: str = ALL) -> pd.DataFrame:
    k12 = load(
        "k12_enrollment",
        ["institution", "year", "student_key", "grade_level", "graduated", "gender", "ethnicity"]
        + ["socioecon_disadvantaged", "english_learner", "disability"],
    )
    k12 = _mine(k12[k12["year"].isin(list(years))], institution)
    graduated = k12["graduated"].fillna(False).astype(bool)
    completers = k12[(k12["grade_level"] == 12) & graduated]
    courses = _of(load("cc_courses", ["student_key", "term"]), completers["student_key"])
    universities = _of(load("univ_students", ["student_key", "year"]), completers["student_key"])
    # A term counts for the completers of the year whose next 12 months it starts in: the
    # summer right after completion, then fall, winter and spring.
    finished = (term_index(courses["term"]) - 2) // 4  # the calendar year of completion
    college = _keys(courses["student_key"], year_label(finished - 1))
    university = _keys(universities["student_key"], shift(universities["year"], -1))
    key = _keys(completers["student_key"], completers["year"])
    enrolled = _isin(key, college) | _isin(key, university)
    return _cohort(completers, completers["year"], {"enrolled": enrolled}, _k12_groups(completers))


def transfer_level(load: Loader, years: Sequence[str], institution: str = ALL) -> pd.DataFrame:
    students = load("cc_students", [*STUDENT_COLUMNS, "promise_grant"])
    cohort = _first_time(_mine(students, institution), years)
    courses = load("cc_courses", ["student_key", "year", "transfer_level", "math_english", "grade"])
    courses = _of(courses, cohort["student_key"])
    passed = courses[courses["transfer_level"] & courses["grade"].isin(SUCCESS)]
    kind = passed["math_english"].fillna("")
    key = _keys(cohort["student_key"], cohort["year"])
    outcomes = {
        name: _isin(key, _keys(passed["student_key"][kind == code], passed["year"][kind == code]))
        for name, code in (("math", "M"), ("english", "E"))
    }
    return _cohort(cohort, cohort["year"], outcomes, _college_groups(cohort, load))


def course_success(load: Loader, years: Sequence[str], institution: str = ALL) -> pd.DataFrame:
    courses = load("cc_courses", ["institution", "year", "student_key", "term", "grade"])
    courses = courses[courses["year"].isin(list(years))]
    students = load("cc_students", ["institution", "year", "student_key", "gender", "ethnicity", "promise_grant"])
    # Merged over the whole consortium, then restricted: where one student has two rows of a
    # college and year, the merge repeats their courses, and the secure kernel makes the result
    # a record set of its own (not the course records). Restricting after the merge keeps one
    # college's tables decided exactly as the consortium's restricted to it.
    enrollments = _mine(courses.merge(students, on=["institution", "year", "student_key"], how="left"), institution)
    enrollments["ethnicity"] = enrollments["ethnicity"].fillna("Not Reported")
    enrollments["gender"] = enrollments["gender"].fillna("X")
    enrollments["promise_grant"] = enrollments["promise_grant"].fillna(False).astype(bool)
    success = enrollments["grade"].isin(SUCCESS)
    period = enrollments["term"].map(term_label)
    return _cohort(enrollments, period, {"success": success}, _college_groups(enrollments, load))


def persistence(load: Loader, years: Sequence[str], institution: str = ALL) -> pd.DataFrame:
    students = _mine(load("cc_students", [*STUDENT_COLUMNS, "promise_grant"]), institution)
    students = students[students["year"].isin(list(years)) & students["first_time"]]
    cohort = students[students["first_term"] == students["year"].str[:4] + "FA"]
    courses = _of(load("cc_courses", ["student_key", "term"]), cohort["student_key"])
    spring = (cohort["year"].str[:4].astype(int) + 1).astype(str) + "SP"
    enrolled = _isin(_keys(cohort["student_key"], spring), _keys(courses["student_key"], courses["term"]))
    return _cohort(cohort, cohort["year"], {"persisted": enrolled}, _college_groups(cohort, load))


def completion(load: Loader, years: Sequence[str], institution: str = ALL) -> pd.DataFrame:
    students = load("cc_students", [*STUDENT_COLUMNS, "promise_grant"])
    cohort = _first_time(_mine(students, institution), years)
    awards = _of(load("cc_awards", ["student_key", "year"]), cohort["student_key"])
    universities = _of(load("univ_students", ["student_key", "year", "degree"]), cohort["student_key"])
    degrees = universities[universities["degree"].fillna("") != ""]
    # An award of year Y completes the cohorts of Y, Y-1 and Y-2 (within three years).
    earned = [
        _keys(frame["student_key"], shift(frame["year"], -back)) for frame in (awards, degrees) for back in range(3)
    ]
    key = _keys(cohort["student_key"], cohort["year"])
    completed = _isin(key, pd.concat(earned))
    return _cohort(cohort, cohort["year"], {"completed": completed}, _college_groups(cohort, load))


def transfer(load: Loader, years: Sequence[str], institution: str = ALL) -> pd.DataFrame:
    students = load("cc_students", ["institution", "year", "student_key", "gender", "ethnicity", "promise_grant"])
    # The institution's students of the cohort years, and every college record of theirs: the
    # units they earned and where they were the next year count at any college.
    mine = _mine(students[students["year"].isin(list(years))], institution)
    students = _of(students, mine["student_key"])
    courses = _of(load("cc_courses", ["student_key", "year", "units", "grade"]), mine["student_key"])
    universities = _of(load("univ_students", ["student_key", "year"]), mine["student_key"])
    parts = []
    for year in sorted(years):
        earned = courses[(courses["year"] <= year) & courses["grade"].isin(EARNED)]
        units = earned.groupby("student_key")["units"].transform("sum")
        twelve = earned["student_key"][units >= 12]
        following = students["student_key"][students["year"] == shift(year, 1)]
        rows = students["year"] == year
        if institution != ALL:
            rows &= students["institution"] == institution
        left = _isin(students["student_key"], twelve) & ~_isin(students["student_key"], following)
        parts.append(students[rows & left])
    left = pd.concat(parts)
    later = _keys(universities["student_key"], shift(universities["year"], -1))
    enrolled = _isin(_keys(left["student_key"], left["year"]), later)
    return _cohort(left, left["year"], {"transferred": enrolled}, _college_groups(left, load))


# ---- the definitions -------------------------------------------------------------------------

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            name="college_going",
            title="College-going rate",
            segment="k12",
            unit="students",
            period="Year of high-school completion",
            cohort="students of a consortium district who completed high school with a regular diploma in the "
            "academic year (twelfth graders with a diploma that year)",
            outcomes=(
                Outcome(
                    "enrolled",
                    "Enrolled in college",
                    "those who enrolled in any college of the consortium, community college or university, within "
                    "12 months of completing: a community-college course in the summer, fall, winter or spring term "
                    "after completion, or a university record of the next academic year",
                ),
            ),
            tables=("k12_enrollment", "cc_courses", "univ_students"),
            build=college_going,
            years=lambda present: sorted(
                y
                for y in _present(present, "k12_enrollment")
                if shift(y, 1) in _present(present, "cc_courses", "univ_students")
            ),
            sources={"socioecon_disadvantaged": "the district's record of the completion year"},
            notes=(
                "This is the California Department of Education's college-going rate (completers enrolled in "
                "college within 12 months, over all completers), counted with the consortium's own colleges and "
                "universities: enrollment elsewhere, in or out of state, is not seen.",
            ),
        ),
        Metric(
            name="transfer_level",
            title="Transfer-level math and English in the first year",
            segment="cc",
            unit="students",
            period="First year (cohort)",
            cohort="first-time college students whose first term falls in the academic year, at the college where "
            "they started",
            outcomes=(
                Outcome(
                    "math",
                    "Transfer-level math",
                    "those who passed (A, B, C or P) a transfer-level mathematics or quantitative-reasoning course at "
                    "any consortium college in that first academic year",
                ),
                Outcome(
                    "english",
                    "Transfer-level English",
                    "those who passed (A, B, C or P) a transfer-level English composition course at any consortium "
                    "college in that first academic year",
                ),
            ),
            tables=("cc_students", "cc_courses", "k12_enrollment"),
            build=transfer_level,
            years=lambda present: sorted(_present(present, "cc_students", "cc_courses")),
            sources=COLLEGE_SOURCES,
            notes=(
                "The AB 1705 measure of the colleges' dashboards: completion of transfer-level math and of "
                "transfer-level English in the first year, each over every first-time student.",
            ),
        ),
        Metric(
            name="course_success",
            title="Course success rate",
            segment="cc",
            unit="enrollments",
            period="Term",
            cohort="course enrollments at the college with a grade on record, withdrawals (W) included, by term",
            outcomes=(Outcome("success", "Course success", "the enrollments graded A, B, C or P"),),
            tables=("cc_courses", "cc_students", "k12_enrollment"),
            build=course_success,
            years=lambda present: sorted(_present(present, "cc_courses")),
            sources=COLLEGE_SOURCES,
            notes=("Counts are of enrollments, not students: a student who took four courses counts four times.",),
        ),
        Metric(
            name="persistence",
            title="Persistence from fall to spring",
            segment="cc",
            unit="students",
            period="Fall cohort (academic year)",
            cohort="first-time college students who started in the fall term, at the college where they started",
            outcomes=(
                Outcome(
                    "persisted",
                    "Enrolled the next spring",
                    "those enrolled in a course (any grade, W included) at any consortium college in the spring "
                    "term that follows",
                ),
            ),
            tables=("cc_students", "cc_courses", "k12_enrollment"),
            build=persistence,
            years=lambda present: sorted(_present(present, "cc_students", "cc_courses")),
            sources=COLLEGE_SOURCES,
        ),
        Metric(
            name="completion",
            title="Completion within three years",
            segment="cc",
            unit="students",
            period="First year (cohort)",
            cohort="first-time college students whose first term falls in the academic year, at the college where "
            "they started",
            outcomes=(
                Outcome(
                    "completed",
                    "Completed",
                    "those who earned a certificate or an associate degree at any consortium college, or a "
                    "bachelor's degree at a consortium university, in that academic year or the two that follow",
                ),
            ),
            tables=("cc_students", "cc_awards", "univ_students", "k12_enrollment"),
            build=completion,
            years=lambda present: sorted(
                y
                for y in _present(present, "cc_students")
                if shift(y, 2) in _present(present, "cc_students", "univ_students")
            ),
            sources=COLLEGE_SOURCES,
            notes=("A cohort needs three academic years of data: the latest cohorts cannot be reported yet.",),
        ),
        Metric(
            name="transfer",
            title="Transfer to a university",
            segment="cc",
            unit="students",
            period="Year the student left",
            cohort="students enrolled at the college in the academic year who had earned 12 or more units at "
            "consortium colleges by its end (grades A, B, C, D or P, from the first year of data on) and were not "
            "enrolled at any consortium college the next academic year",
            outcomes=(
                Outcome(
                    "transferred",
                    "Enrolled at a university",
                    "those with a record at a consortium university in the next academic year",
                ),
            ),
            tables=("cc_students", "cc_courses", "univ_students", "k12_enrollment"),
            build=transfer,
            years=lambda present: sorted(
                y
                for y in _present(present, "cc_students")
                if shift(y, 1) in _present(present, "cc_students") and shift(y, 1) in _present(present, "univ_students")
            ),
            sources=COLLEGE_SOURCES,
            notes=(
                "A student enrolled at two colleges in the year that they left counts at each; the consortium "
                "total counts them once per college.",
            ),
        ),
    )
}


def years_present(load: Loader, tables: Sequence[str]) -> dict[str, set[str]]:
    """The academic years each table holds (from the labels of a count by year, which the
    secure kernel may show: no record leaves as a plain value)."""
    return {t: {str(y) for y in load(t, ["year"]).groupby("year").size().index} for t in tables}


def answerable_years(metric: Metric, load: Loader) -> list[str]:
    """The cohort years the data can answer for ``metric``."""
    return metric.years(years_present(load, metric.tables))
