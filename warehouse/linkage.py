"""Cross-segment linkage: how many students the student key follows from one segment to the next.

A student is linked when the same keyed-HMAC student key appears in both tables: the same
statewide id, or, without one, the same normalized name and birth date. Rates are shares of
distinct students of the later segment (or, for ``k12_to_postsecondary``, of K-12 students).
"""

from __future__ import annotations

from sqlalchemy import Engine, distinct, func, select, union

from warehouse.schema import cc_students, k12_enrollment, univ_students

LINKS = {  # name: (students of, found in, what it means)
    "cc_from_k12": (cc_students, (k12_enrollment,), "community-college students with a consortium K-12 record"),
    "univ_from_k12": (univ_students, (k12_enrollment,), "university students with a consortium K-12 record"),
    "univ_from_cc": (univ_students, (cc_students,), "university students with a consortium college record"),
    "k12_to_postsecondary": (
        k12_enrollment,
        (cc_students, univ_students),
        "K-12 students later found at a consortium college or university",
    ),
}


def linkage_rates(engine: Engine) -> dict[str, dict[str, float | int | str]]:
    """Name → {students, linked, rate (0-1), meaning} for each link in ``LINKS``."""
    found = {}
    with engine.connect() as conn:
        for name, (table, others, meaning) in LINKS.items():
            keys = union(*(select(other.c.student_key) for other in others)).subquery()
            students = conn.scalar(select(func.count(distinct(table.c.student_key))))
            linked = conn.scalar(
                select(func.count(distinct(table.c.student_key))).where(
                    table.c.student_key.in_(select(keys.c.student_key))
                )
            )
            found[name] = {
                "students": students,
                "linked": linked,
                "rate": round(linked / students, 4) if students else 0.0,
                "meaning": meaning,
            }
    return found
