"""Academic years and terms as the consortium's data write them, and the order reports use.

An academic year runs from fall to summer ("2024-25": 2024FA, 2025WI, 2025SP, 2025SU). Every
function takes a plain value or a pandas Series (row by row, so a record-level column stays
record-level in the secure kernel).
"""

from __future__ import annotations

import pandas as pd

SEASONS = {"WI": ("Winter", 0), "SP": ("Spring", 1), "SU": ("Summer", 2), "FA": ("Fall", 3)}


def year_label(start: pd.Series | int) -> pd.Series | str:
    """The academic year that starts in the fall of ``start``: 2023 -> "2023-24"."""
    if isinstance(start, pd.Series):
        return start.astype(str) + "-" + ((start + 1) % 100).astype(str).str.zfill(2)
    return f"{start}-{(start + 1) % 100:02d}"


def shift(year: pd.Series | str, by: int) -> pd.Series | str:
    """The academic year ``by`` years after ``year`` (before, if negative)."""
    if isinstance(year, pd.Series):
        return year_label(year.str[:4].astype(int) + by)
    return year_label(int(year[:4]) + by)


def term_year(terms: pd.Series) -> pd.Series:
    """The academic year of each term: 2024FA -> 2024-25; 2025SP, 2025SU -> 2024-25."""
    return year_label(terms.str[:4].astype(int) - (terms.str[4:] != "FA").astype(int))


def term_index(terms: pd.Series) -> pd.Series:
    """Terms as consecutive numbers (four a calendar year: WI, SP, SU, FA)."""
    return terms.str[:4].astype(int) * 4 + terms.str[4:].map({k: v[1] for k, v in SEASONS.items()}).astype(int)


def term_label(term: str) -> str:
    return f"{SEASONS[term[4:]][0]} {term[:4]}"


def period_order(periods) -> list[str]:
    """Cohort years in order; terms ("Fall 2023") by year, then season."""
    seasons = {name: order for name, order in SEASONS.values()}

    def key(label: str) -> tuple:
        season, _, year = str(label).partition(" ")
        return (int(year), seasons[season]) if season in seasons and year.isdigit() else (str(label), 0)

    return sorted(periods, key=key)
