"""Deterministic synthetic consortium: the raw files member institutions would upload.

The secure research environment is developed and tested without real student records.
:func:`generate` writes, for a fictional consortium of K-12 districts, community colleges
and universities, the CSV files each member would upload *before* pseudonymization, raw
identifiers (SSID, local id, names, birth date) included. Every file follows the data
element contract in ``warehouse/elements/<year>.toml``: the columns of its table in order,
``Y``/``N`` booleans, ``YYYY-MM-DD`` dates, terms such as ``2024SP``, codes from the allowed
lists and blanks only for optional values. The same students appear across segments (a
grade-9 cohort followed into college), so linkage, outcome measures and the disclosure
filter's small-cell suppression can be exercised on realistic data.

All randomness comes from ``numpy.random.default_rng(seed)``: the same ``(students, seed)``
writes byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from warehouse.synthetic_people import (
    CA_ETHNICITY,
    ETHNICITIES,
    GENDERS,
    People,
    born_window,
    calibrated,
    draw_people,
    identifiers,
    outsiders,
    pick,
    unique_ints,
)


@dataclass(frozen=True)
class Institution:
    """A consortium member."""

    slug: str  # short file-system-safe id
    name: str  # fictional full name
    segment: str  # "k12" | "cc" | "univ"


@dataclass(frozen=True)
class RawFile:
    """One raw upload: a table of one institution for one academic year."""

    institution: str  # Institution.slug
    table: str
    year: str  # e.g. "2023-24"
    path: Path
    rows: int


@dataclass(frozen=True)
class Consortium:
    """What :func:`generate` wrote."""

    institutions: tuple[Institution, ...]
    files: tuple[RawFile, ...]
    students: int
    seed: int


# Districts: slug, name, relative size, school weights, ethnicity multipliers (vs. CA_ETHNICITY).
_DISTRICTS = (
    (
        "valle-verde-usd",
        "Valle Verde Unified School District",
        30,
        (35, 28, 22, 15),
        (1.1, 0.6, 1.0, 1.4, 1.0, 1.2, 0.7, 1.0, 1.0),
    ),
    (
        "bahia-serena-usd",
        "Bahia Serena Unified School District",
        22,
        (45, 35, 20),
        (0.7, 0.4, 2.0, 0.8, 2.2, 1.5, 1.1, 1.3, 0.8),
    ),
    (
        "sierra-alta-jusd",
        "Sierra Alta Joint Unified School District",
        18,
        (50, 30, 20),
        (0.8, 3.0, 0.4, 0.4, 0.3, 0.5, 1.8, 1.2, 1.2),
    ),
    (
        "copperleaf-usd",
        "Copperleaf Unified School District",
        14,
        (60, 40),
        (1.35, 1.0, 0.5, 0.5, 0.6, 0.4, 0.5, 0.6, 1.0),
    ),
    (
        "marisol-uhsd",
        "Marisol Union High School District",
        10,
        (55, 45),
        (0.9, 0.8, 1.2, 1.1, 1.4, 1.0, 1.0, 1.1, 1.5),
    ),
    (
        "bluebell-canyon-usd",
        "Bluebell Canyon Unified School District",
        6,
        (100,),
        (1.0, 2.0, 0.3, 0.3, 0.3, 0.2, 1.4, 0.8, 0.7),
    ),
)
_COLLEGES = (
    ("costa-serena-cc", "Costa Serena Community College"),
    ("alder-valley-college", "Alder Valley College"),
    ("mesa-lucero-cc", "Mesa Lucero Community College"),
    ("tamarack-springs-college", "Tamarack Springs College"),
)
_UNIVERSITIES = (
    ("pacific-crest-su", "Pacific Crest State University"),
    ("bayview-poly", "Bayview Polytechnic University"),
    ("vista-larga-u", "University of Vista Larga"),
)
INSTITUTIONS: tuple[Institution, ...] = (
    tuple(Institution(d[0], d[1], "k12") for d in _DISTRICTS)
    + tuple(Institution(s, n, "cc") for s, n in _COLLEGES)
    + tuple(Institution(s, n, "univ") for s, n in _UNIVERSITIES)
)
_CC0, _UNIV0 = len(_DISTRICTS), len(_DISTRICTS) + len(_COLLEGES)

_DIST_W = np.array([d[2] for d in _DISTRICTS], dtype=float) / sum(d[2] for d in _DISTRICTS)
_SCHOOL_W = np.array([list(d[3]) + [0] * (4 - len(d[3])) for d in _DISTRICTS], dtype=float)
_SCHOOL_W /= _SCHOOL_W.sum(axis=1, keepdims=True)
_DIST_ETH = CA_ETHNICITY * np.array([d[4] for d in _DISTRICTS])
_DIST_ETH /= _DIST_ETH.sum(axis=1, keepdims=True)
_MOVE = _DIST_W * (1 - np.eye(len(_DISTRICTS)))  # district-to-district transfers
_MOVE /= _MOVE.sum(axis=1, keepdims=True)
_CC_AFFINITY = np.array(
    [
        [0.60, 0.25, 0.10, 0.05],
        [0.20, 0.60, 0.15, 0.05],
        [0.10, 0.15, 0.60, 0.15],
        [0.15, 0.10, 0.15, 0.60],
        [0.50, 0.10, 0.30, 0.10],
        [0.05, 0.05, 0.30, 0.60],
    ]
)
_UNIV_FROM_DISTRICT = np.array(
    [[0.5, 0.3, 0.2], [0.3, 0.5, 0.2], [0.2, 0.3, 0.5], [0.4, 0.2, 0.4], [0.3, 0.4, 0.3], [0.2, 0.2, 0.6]]
)
_UNIV_FROM_CC = np.array([[0.5, 0.3, 0.2], [0.3, 0.5, 0.2], [0.2, 0.3, 0.5], [0.3, 0.2, 0.5]])

K12_YEARS = ("2019-20", "2020-21", "2021-22", "2022-23", "2023-24")
COLLEGE_YEARS = ("2023-24", "2024-25", "2025-26")
TERMS = ("2023FA", "2024SP", "2024SU", "2024FA", "2025SP", "2025SU", "2025FA", "2026SP")
_TERM_YEAR = np.array([0, 0, 0, 1, 1, 1, 2, 2])  # index into COLLEGE_YEARS
_SUMMERS = (2, 5)

# Course catalog: subject, number, transfer level, units, math/English kind, difficulty, P/NP.
_CATALOG_SPEC = """
MATH 1 Y 4 M -.3 | MATH 2 Y 4 M -.3 | MATH 13 Y 4 M -.2 | MATH 20 Y 3 M -.2 | MATH 253 N 4 M -.1
STAT 10 Y 3 M -.1 | STAT 10H Y 3 M 0 | STAT 50 N 3 M 0
ENGL 1A Y 3 E 0 | ENGL 1C Y 3 E 0 | ENGL 50 N 3 E 0 | ENGL 30 Y 3 - .1 | ENGL 46 Y 3 - .1
HIST 17A Y 3 - 0 | HIST 17B Y 3 - 0 | HIST 4 Y 3 - 0 | HIST 100 N 3 - 0
BIOL 10 Y 3 - -.1 | BIOL 1 Y 4 - -.2 | BIOL 20 Y 3 - 0 | BIOL 90 N 1 - .2
PSYC 1 Y 3 - .1 | PSYC 33 Y 3 - 0 | PSYC 90 N 1 - .3 P | PSYC 50 N 3 - .1
CHEM 1A Y 4 - -.3 | CHEM 10 Y 3 - -.2 | CHEM 101 N 3 - -.1
BUS 10 Y 3 - 0 | BUS 60 N 3 - .1 | BUS 1A Y 3 - -.1 | BUS 70 N 3 - .1
CIS 1 Y 3 - 0 | CIS 50 N 3 - .1 | CIS 5 Y 3 - -.1 | CIS 90 N 1 - .2 P
ART 1 Y 3 - .2 | ART 7 Y 3 - .2 | ART 90 N 1 - .3 | ART 60 N 3 - .2
SPAN 1 Y 4 - .1 | SPAN 2 Y 3 - 0 | SPAN 100 N 3 - .1
KIN 1 Y 1 - .3 P | KIN 15 Y .5 - .3 P | KIN 20 Y 3 - .2 | KIN 90 N .5 - .3
COMM 1 Y 3 - .1 | COMM 10 Y 3 - .1 | COMM 50 N 3 - .1
SOC 1 Y 3 - .1 | SOC 2 Y 3 - 0
ECON 1 Y 3 - -.1 | ECON 2 Y 3 - -.1
PHYS 2A Y 4 - -.3 | PHYS 10 Y 3 - -.1 | PHYS 100 N 3 - 0
"""
_SUBJECT_P = dict(
    MATH=0.13,
    STAT=0.04,
    ENGL=0.13,
    HIST=0.07,
    BIOL=0.06,
    PSYC=0.07,
    CHEM=0.04,
    BUS=0.06,
    CIS=0.06,
    ART=0.05,
    SPAN=0.05,
    KIN=0.07,
    COMM=0.05,
    SOC=0.05,
    ECON=0.04,
    PHYS=0.03,
)
_CAT_ROWS = [(c.split() + [""])[:7] for c in _CATALOG_SPEC.replace("\n", "|").split("|") if c.strip()]
_CAT = {
    name: np.array([row[i] for row in _CAT_ROWS])
    for i, name in enumerate(("subject", "number", "transfer", "units", "kind", "diff", "pnp"))
}
_CAT["units"], _CAT["diff"] = _CAT["units"].astype(float), _CAT["diff"].astype(float)
_CAT["kind"] = np.where(_CAT["kind"] == "-", "", _CAT["kind"])
_CAT_P = np.array([_SUBJECT_P[s] / (_CAT["subject"] == s).sum() for s in _CAT["subject"]])
_CAT_P /= _CAT_P.sum()
# Non-transfer-level MATH and ENGL courses that some first MATH/ENGL enrollments are moved to.
_REMEDIAL = {
    k: int(np.flatnonzero((_CAT["subject"] == s) & (_CAT["number"] == n))[0])
    for k, s, n in (("M", "MATH", "253"), ("E", "ENGL", "50"))
}
GRADES = ("A", "B", "C", "D", "F", "P", "NP", "W")
_PASSING = np.array([True, True, True, True, False, True, False, False])
MAJORS = (
    "Arts & Humanities",
    "Business",
    "Education",
    "Engineering & Computing",
    "Health",
    "Life Sciences",
    "Physical Sciences & Math",
    "Social Sciences",
    "Undeclared",
)
_MAJOR_P = np.array([0.12, 0.17, 0.06, 0.16, 0.12, 0.14, 0.07, 0.16])
_MAJOR_BS = np.array([False, False, False, True, True, True, True, False, False])

_IDS = ["ssid", "local_id", "first_name", "last_name", "birth_date"]
COLUMNS: dict[str, list[str]] = {
    "k12_enrollment": _IDS
    + [
        "school",
        "grade_level",
        "gender",
        "ethnicity",
        "english_learner",
        "socioecon_disadvantaged",
        "disability",
        "ag_complete",
        "graduated",
    ],
    "cc_students": _IDS + ["gender", "ethnicity", "first_term", "first_time", "promise_grant"],
    "cc_courses": _IDS + ["term", "subject", "course_number", "transfer_level", "math_english", "units", "grade"],
    "cc_awards": _IDS + ["term", "award"],
    "univ_students": _IDS + ["entry_term", "admission_basis", "major", "gpa", "degree", "degree_term"],
}


def academic_year(term: str) -> str:
    """Academic year of a term: ``2024FA`` -> ``2024-25``; ``2025SP``/``2025SU`` -> ``2024-25``."""
    start = int(term[:4]) - (term[4:] != "FA")
    return f"{start}-{(start + 1) % 100:02d}"


def _yn(flags: np.ndarray) -> np.ndarray:
    return np.where(flags, "Y", "N")


def _frame(inst: np.ndarray, year, ids: dict, sel: np.ndarray, **columns) -> pd.DataFrame:
    """Rows ``sel`` of a table: institution index, year, identifier columns, then ``columns``."""
    return pd.DataFrame({"_inst": inst[sel], "_year": year, **{k: v[sel] for k, v in ids.items()}, **columns})


def _simulate_k12(rng: np.random.Generator, n: int) -> tuple[People, pd.DataFrame, dict]:
    """Follow ``n`` grade-9 students (half from 2019-20, half from 2020-21) through grade 12.

    Returns the people, the k12_enrollment rows, and per student the graduation year (0:
    none), the district graduated from and a-g completion.
    """
    cohort = (np.arange(n) >= n // 2).astype(int)
    dist = rng.choice(len(_DISTRICTS), size=n, p=_DIST_W)
    older = (rng.random(n) < 0.03).astype(int)
    ppl = draw_people(rng, _DIST_ETH[dist], born_window(2023 + cohort, older))
    school = pick(rng, _SCHOOL_W[dist])
    pool = unique_ints(rng, n + n // 4 + 50, 10**7, 10**8)  # district student numbers
    local, used = pool[:n].copy(), n
    risk = 0.35 * ppl.ses + 0.5 * ppl.el + 0.5 * ppl.disability
    p_grad = calibrated(0.9 * ppl.ability - risk, 0.85)
    p_ag = calibrated(1.2 * ppl.ability - risk - 0.4 * ppl.disability, 0.45)
    hazard = np.exp(-0.5 * ppl.ability)
    p_leave = np.minimum(0.03 * hazard / hazard.mean(), 0.25)  # drop out or move away
    grade, el, active = np.full(n, 9), ppl.el.copy(), np.zeros(n, dtype=bool)
    out = {"grad_year": np.zeros(n, dtype=int), "district": dist.copy(), "ag": np.zeros(n, dtype=bool)}
    parts = []
    for y in range(len(K12_YEARS)):
        active |= cohort == y
        u = rng.random((4, n))
        g12 = active & (grade == 12)
        grad = g12 & (u[0] < p_grad)
        ag = grad & (u[1] < p_ag)
        idx = np.flatnonzero(active)
        parts.append(
            (
                idx,
                np.full(len(idx), y),
                dist[idx],
                school[idx],
                local[idx],
                grade[idx],
                el[idx],
                (g12 * (1 + ag))[idx],
                (g12 * (1 + grad))[idx],
            )
        )
        out["grad_year"][grad], out["district"][grad], out["ag"][grad] = 2020 + y, dist[grad], ag[grad]
        active &= ~grad & ~(g12 & (u[2] >= 0.35))  # a third of non-graduates return for a 5th year
        low = active & (grade < 12)
        retain = low & (u[3] < 0.02)
        leave = low & (u[3] >= 0.02) & (u[3] < 0.02 + p_leave)
        move = np.flatnonzero(low & (u[3] >= 0.02 + p_leave) & (u[3] < 0.035 + p_leave))
        grade[low & ~retain] += 1
        active &= ~leave
        dist[move] = pick(rng, _MOVE[dist[move]])
        school[move] = pick(rng, _SCHOOL_W[dist[move]])
        local[move], used = pool[used : used + len(move)], used + len(move)
        el[idx] &= rng.random(len(idx)) >= 0.2  # reclassified fluent English proficient
    person, yr, inst, sch, loc, gr, elf, agc, grc = map(np.concatenate, zip(*parts, strict=True))
    ids = identifiers(ppl, person, loc.astype(str), np.ones(len(person), dtype=bool))
    blank_n_y = np.array(["", "N", "Y"])
    k12 = _frame(
        inst,
        np.array(K12_YEARS)[yr],
        ids,
        slice(None),
        school=np.char.add("HS0", (sch + 1).astype(str)),
        grade_level=gr,
        gender=np.array(GENDERS)[ppl.gender[person]],
        ethnicity=np.array(ETHNICITIES)[ppl.ethnicity[person]],
        english_learner=_yn(elf),
        socioecon_disadvantaged=_yn(ppl.ses[person]),
        disability=_yn(ppl.disability[person]),
        ag_complete=blank_n_y[agc],
        graduated=blank_n_y[grc],
    )
    return ppl, k12, out


def _grades(rng: np.random.Generator, score: np.ndarray, pnp: np.ndarray) -> np.ndarray:
    """Grade indices into GRADES: W more likely for low scores, letters by score quantiles."""
    g = np.full(len(score), 7)
    if not len(score):
        return g
    w = rng.random(len(score)) < calibrated(-0.9 * score, 0.12)
    letter, pass_np = ~w & ~pnp, ~w & pnp
    if letter.any():
        cuts = np.quantile(score[letter], [0.1125, 0.175, 0.35, 0.625])  # F|D, D|C, C|B, B|A
        g[letter] = 4 - np.searchsorted(cuts, score[letter])
    if pass_np.any():
        g[pass_np] = np.where(score[pass_np] > np.quantile(score[pass_np], 0.25), 5, 6)
    return g


def _simulate_cc(
    rng: np.random.Generator, ppl: People, spells: pd.DataFrame
) -> tuple[dict[str, pd.DataFrame], np.ndarray]:
    """Term-by-term college enrollment, courses, awards; returns tables and transfer terms."""
    m = len(spells)
    person, start = spells["person"].to_numpy(), spells["start"].to_numpy()
    ability = ppl.ability[person]
    full_time = rng.random(m) < 0.3 + 0.1 * (ability > 0)
    p_persist = np.clip(0.75 + 0.07 * ability, 0.45, 0.95)
    units = spells["prior_units"].to_numpy(dtype=float).copy()
    seen = np.zeros((m, 2), dtype=bool)  # has taken a MATH/STAT, an ENGL composition course
    active, enrolled = np.zeros(m, dtype=bool), np.zeros((m, len(TERMS)), dtype=bool)
    transfer = np.full(m, -1)
    batches = []
    for t in range(len(TERMS)):
        active |= start == t
        u = rng.random((4, m))
        summer = t in _SUMMERS
        enrolled[:, t] = active & (u[0] < 0.3) if summer else active
        idx = np.flatnonzero(enrolled[:, t])
        base = 1 if summer else np.where(full_time[idx], 4, 2)
        rows = np.repeat(idx, base + (u[1][idx] < 0.45))
        c = rng.choice(len(_CAT_P), size=len(rows), p=_CAT_P)
        kind, u_row = _CAT["kind"][c], rng.random((3, len(rows)))
        for k, col in (("M", 0), ("E", 1)):  # first MATH/ENGL courses are less often transfer level
            first = (kind == k) & ~seen[rows, col] & np.isin(_CAT["subject"][c], ["MATH", "ENGL"])
            c[first & (u_row[col] < 0.4)] = _REMEDIAL[k]
            seen[rows[kind == k], col] = True
        score = ability[rows] - _CAT["diff"][c] + 0.9 * rng.standard_normal(len(rows))
        g = _grades(rng, score, (_CAT["pnp"][c] == "P") | (u_row[2] < 0.02))
        units += np.bincount(rows, weights=_CAT["units"][c] * _PASSING[g], minlength=m)
        batches.append((rows, np.full(len(rows), t), c, g))
        if not summer:
            moving = enrolled[:, t] & (units >= 56) & (u[3] < 0.6) & (t in (1, 4))
            transfer[moving] = t + 2
            active &= (u[2] < p_persist) & ~moving

    ids = identifiers(ppl, person, spells["local"].to_numpy(), spells["show"].to_numpy())
    inst, terms, years = spells["college"].to_numpy() + _CC0, np.array(TERMS), np.array(COLLEGE_YEARS)
    sp, yr = np.nonzero(np.stack([enrolled[:, _TERM_YEAR == k].any(axis=1) for k in range(3)], 1))
    p_promise = np.where(ppl.ses[person[sp]], 0.78, 0.25)
    students = _frame(
        inst,
        years[yr],
        ids,
        sp,
        gender=np.array(GENDERS)[ppl.gender[person[sp]]],
        ethnicity=np.array(ETHNICITIES)[ppl.ethnicity[person[sp]]],
        first_term=terms[start[sp]],
        first_time=_yn(spells["first_time"].to_numpy()[sp]),
        promise_grant=_yn(rng.random(len(sp)) < p_promise),
    )
    r, t, c, g = map(np.concatenate, zip(*batches, strict=True))
    courses = _frame(
        inst,
        years[_TERM_YEAR[t]],
        ids,
        r,
        term=terms[t],
        subject=_CAT["subject"][c],
        course_number=_CAT["number"][c],
        transfer_level=_CAT["transfer"][c],
        math_english=_CAT["kind"][c],
        units=_CAT["units"][c],
        grade=np.array(GRADES)[g],
    )
    primary = np.array([t not in _SUMMERS for t in range(len(TERMS))])
    eligible = (enrolled[:, primary].sum(axis=1) >= 4) | (transfer >= 0)  # stayed 2+ years
    won = np.flatnonzero(eligible & (rng.random(m) < np.where(transfer >= 0, 0.4, 0.16)))
    last = len(TERMS) - 1 - np.argmax(enrolled[won, ::-1], axis=1)
    awards = _frame(
        inst,
        years[_TERM_YEAR[last]],
        ids,
        won,
        term=terms[last],
        award=np.where(units[won] >= 60, "associate", "certificate"),
    )
    return {"cc_students": students, "cc_courses": courses, "cc_awards": awards}, transfer


def _simulate_univ(rng: np.random.Generator, ppl: People, spells: pd.DataFrame) -> pd.DataFrame:
    """Yearly university enrollment with cumulative GPA, majors and degrees."""
    m = len(spells)
    person, entry = spells["person"].to_numpy(), spells["entry"].to_numpy()
    is_transfer = spells["transfer"].to_numpy()
    gpa = 3.0 + 0.35 * ppl.ability[person] + 0.3 * rng.standard_normal(m)
    major = rng.choice(8, size=m, p=_MAJOR_P / _MAJOR_P.sum())
    undeclared = ~is_transfer & (rng.random(m) < 0.3)
    ids = identifiers(ppl, person, spells["local"].to_numpy(), spells["show"].to_numpy())
    active, parts = np.zeros(m, dtype=bool), []
    for k, year in enumerate(COLLEGE_YEARS):
        active |= entry == k
        u = rng.random((3, m))
        gpa = gpa + 0.1 * rng.standard_normal(m)
        g = np.clip(gpa, 0.0, 4.0)
        done = (
            active & is_transfer & (g >= 2.0) & (u[0] < np.select([k - entry == 1, k - entry == 2], [0.45, 0.6], 0.0))
        )
        idx = np.flatnonzero(active)
        season = np.array(["FA", "SP", "SU"])[np.searchsorted([0.08, 0.88], u[1][idx])]
        term = np.char.add(np.where(season == "FA", str(2023 + k), str(2024 + k)), season)
        maj = np.where(undeclared & (entry == k), 8, major)[idx]
        parts.append(
            _frame(
                spells["univ"].to_numpy() + _UNIV0,
                year,
                ids,
                idx,
                entry_term=np.char.add((2023 + entry[idx]).astype(str), "FA"),
                admission_basis=np.where(is_transfer[idx], "transfer", "first-time"),
                major=np.array(MAJORS)[maj],
                gpa=np.char.mod("%.2f", g[idx]),
                degree=np.where(done[idx], np.where(_MAJOR_BS[maj], "BS", "BA"), ""),
                degree_term=np.where(done[idx], term, ""),
            )
        )
        active &= ~done & (u[2] < np.where(g >= 2.0, 0.9, 0.6))
    return pd.concat(parts, ignore_index=True)


def _write(out_dir: Path, table: str, frame: pd.DataFrame) -> list[RawFile]:
    """Write one CSV per (institution, year) that has rows."""
    keys = ["_inst", "_year", "local_id"] + (["term"] if "term" in frame else [])
    frame = frame.sort_values(keys, kind="stable")
    files = []
    for (inst, year), rows in frame.groupby(["_inst", "_year"], sort=True):
        slug = INSTITUTIONS[inst].slug
        path = out_dir / slug / f"{table}_{year}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows[COLUMNS[table]].to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
        files.append(RawFile(slug, table, str(year), path, len(rows)))
    return files


def _college_spells(rng: np.random.Generator, ppl: People, graduates: pd.DataFrame) -> tuple[People, pd.DataFrame]:
    """Community-college entrants: ``graduates`` (person, home district, entry fall 0/1 for
    2023/2024), plus ~15 % out-of-region students starting over the same terms."""
    college = pick(rng, _CC_AFFINITY[graduates["home"].to_numpy()])
    n_in, out_college = (
        len(college),
        np.repeat(
            np.arange(len(_COLLEGES)),
            np.round(0.15 * np.bincount(college, minlength=len(_COLLEGES))).astype(int),
        ),
    )
    n_out = len(out_college)
    out_start = rng.choice([0, 1, 3, 4, 6, 7], size=n_out, p=[0.26, 0.12, 0.24, 0.1, 0.2, 0.08])
    out_first = rng.random(n_out) < 0.45  # new high-school graduates from elsewhere
    out_age = np.where(out_first, rng.random(n_out) < 0.1, rng.integers(1, 25, size=n_out))
    ppl, out_people = outsiders(rng, ppl, 2023 + _TERM_YEAR[out_start], out_age)
    return ppl, pd.DataFrame(
        {
            "person": np.concatenate([graduates["person"], out_people]),
            "college": np.concatenate([college, out_college]),
            "start": np.concatenate([3 * graduates["entry"], out_start]),
            "first_time": np.concatenate([np.ones(n_in, dtype=bool), out_first]),
            "prior_units": np.concatenate([np.zeros(n_in), np.where(out_first, 0, rng.integers(0, 46, size=n_out))]),
            "show": np.concatenate([rng.random(n_in) >= 0.15, np.ones(n_out, dtype=bool)]),
            "local": np.char.add("A", unique_ints(rng, n_in + n_out, 10**7, 10**8).astype(str)),
        }
    )


def _university_spells(
    rng: np.random.Generator, ppl: People, first: pd.DataFrame, transfers: pd.DataFrame
) -> tuple[People, pd.DataFrame]:
    """University entrants: first-time in-region graduates, community-college transfers, and
    ~30 % out-of-region students (first-time or transfer) entering fall 2023 to fall 2025."""
    univ = np.concatenate(
        [
            pick(rng, _UNIV_FROM_DISTRICT[first["home"].to_numpy()]),
            pick(rng, _UNIV_FROM_CC[transfers["college"].to_numpy()]),
        ]
    )
    out_univ = np.repeat(
        np.arange(len(_UNIVERSITIES)),
        np.round(0.30 * np.bincount(univ, minlength=len(_UNIVERSITIES))).astype(int),
    )
    n_out = len(out_univ)
    out_entry = rng.integers(0, 3, size=n_out)
    out_transfer = rng.random(n_out) < 0.35
    out_age = np.where(out_transfer, rng.integers(2, 12, size=n_out), rng.random(n_out) < 0.1)
    ppl, out_people = outsiders(rng, ppl, 2023 + out_entry, out_age)
    spells = pd.DataFrame(
        {
            "person": np.concatenate([first["person"], transfers["person"], out_people]),
            "univ": np.concatenate([univ, out_univ]),
            "entry": np.concatenate([first["entry"], transfers["entry"], out_entry]),
            "transfer": np.concatenate(
                [np.zeros(len(first), dtype=bool), np.ones(len(transfers), dtype=bool), out_transfer]
            ),
            "show": np.concatenate([rng.random(len(univ)) >= 0.25, np.ones(n_out, dtype=bool)]),
        }
    )
    spells["local"] = unique_ints(rng, len(spells), 10**8, 10**9).astype(str)
    return ppl, spells


def generate(out_dir: Path, students: int = 20_000, seed: int = 0) -> Consortium:
    """Write the raw files under out_dir/<slug>/<table>_<year>.csv and return what was written.

    ``students`` grade-9 students are followed (half entering in 2019-20, half in 2020-21)
    through high school (2019-20 to 2023-24) and into the consortium's colleges and
    universities (2023-24 to 2025-26), which also enroll out-of-region students. The same
    ``(students, seed)`` always writes byte-identical files. Raises ValueError when
    ``students`` < 100 or ``seed`` is negative.
    """
    if isinstance(students, bool) or not isinstance(students, (int, np.integer)) or students < 100:
        raise ValueError(f"students must be an integer >= 100, got {students!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    ppl, k12, hs = _simulate_k12(rng, int(students))

    # The fall after graduating: ~50 % community college, ~22 % university (mostly a-g completers).
    grads = np.flatnonzero(hs["grad_year"] > 0)
    fall = (hs["grad_year"][grads] == 2024).astype(int)  # 0: fall 2023, 1: fall 2024
    u, ag = rng.random(len(grads)), hs["ag"][grads]
    to_univ = np.where(ag, u < 0.40, u < 0.04)
    to_cc = ~to_univ & np.where(ag, u < 0.78, u < 0.66)
    entrants = pd.DataFrame({"person": grads, "home": hs["district"][grads], "entry": fall})
    ppl, cc_spells = _college_spells(rng, ppl, entrants[to_cc])
    cc_tables, transfer = _simulate_cc(rng, ppl, cc_spells)

    moved = transfer >= 0
    transfers = cc_spells.loc[moved, ["person", "college"]].assign(entry=_TERM_YEAR[transfer[moved]])
    ppl, univ_spells = _university_spells(rng, ppl, entrants[to_univ], transfers)
    tables = {"k12_enrollment": k12, **cc_tables, "univ_students": _simulate_univ(rng, ppl, univ_spells)}

    out_dir = Path(out_dir)
    files = [f for table, frame in tables.items() for f in _write(out_dir, table, frame)]
    order = {inst.slug: i for i, inst in enumerate(INSTITUTIONS)}
    files.sort(key=lambda f: (order[f.institution], list(COLUMNS).index(f.table), f.year))
    return Consortium(INSTITUTIONS, tuple(files), int(students), int(seed))
