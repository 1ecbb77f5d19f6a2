"""What the filter suppressed in this kernel, from its own record: a report's closing summary.

The secure kernel's session (``output_filters.kernel.extension``) records every count table and
every table of rates it publishes (``FilterSession.decisions``). ``disclosure_summary()`` adds
them up so a report can end by saying what was hidden and why, in the filter's words, without
the template counting anything itself. Outside the secure kernel there is no filter, and the
summary says so rather than pretend nothing was hidden.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from output_filters.policy import Policy
from output_filters.session import Decision, FilterSession


@dataclass(frozen=True)
class DisclosureSummary:
    active: bool  # False: no output filter in this process
    policy: Policy | None
    tables: int = 0  # count tables decided
    cells: int = 0
    small: int = 0  # count cells hidden because they are small
    protecting: int = 0  # count cells hidden so totals or earlier tables cannot give a small one back
    rate_tables: int = 0
    rates_small: int = 0  # rates hidden because their group is small
    rates_beside: int = 0  # rates missing because their count (or group) is hidden or empty
    rates_coded: int = 0  # rates shown as a band ("<5%", ">95%")

    @property
    def hidden(self) -> int:
        return self.small + self.protecting + self.rates_small + self.rates_beside

    def lines(self) -> list[str]:
        """The summary as sentences, one per reason that applies."""
        if not self.active or self.policy is None:
            return ["No output filter was active in this process: nothing here was checked for disclosure."]
        t, mark = self.policy.threshold, self.policy.mark
        out = [
            f"The output filter decided {self.tables} count table(s) ({self.cells} cells) and "
            f"{self.rate_tables} table(s) of rates and other statistics in this report, with the consortium "
            f"policy's threshold of {t}."
        ]
        if self.small:
            out.append(f"{self.small} count cell(s) shown as {mark}: fewer than {t} students (primary suppression).")
        if self.protecting:
            out.append(
                f"{self.protecting} more count cell(s) shown as {mark} so that the totals, or tables shown before, "
                "cannot give a small cell back by subtraction (secondary suppression)."
            )
        if self.rates_small:
            out.append(
                f"{self.rates_small} rate(s) or statistic(s) shown as {mark}: the group behind them has fewer than {t} "
                "students."
            )
        if self.rates_beside:
            out.append(
                f"{self.rates_beside} rate(s) or statistic(s) shown as {mark} because their count or their group "
                "is suppressed (or empty): a rate beside a hidden count would give it back."
            )
        if self.rates_coded:
            lo, hi = self.policy.rate_band
            out.append(
                f"{self.rates_coded} rate(s) of groups under {self.policy.rate_band_below} students shown as a band "
                f"(below {lo:g} % or above {hi:g} %) instead of a value."
            )
        if self.hidden == 0 and not self.rates_coded:
            out.append("Nothing needed to be suppressed.")
        return out

    def markdown(self) -> str:
        return "\n".join(f"- {line}" for line in self.lines())


def summarize(decisions: Iterable[Decision], policy: Policy | None, active: bool = True) -> DisclosureSummary:
    """Add up ``decisions`` (a session's, or a slice of them)."""
    totals = dict.fromkeys(
        ("tables", "cells", "small", "protecting", "rate_tables", "rates_small", "rates_beside", "rates_coded"), 0
    )
    for d in decisions:
        if d.kind == "counts":
            totals["tables"] += 1
            totals["cells"] += d.cells
            totals["small"] += d.primary
            totals["protecting"] += d.secondary
        else:
            totals["rate_tables"] += 1
            totals["rates_small"] += d.primary
            totals["rates_beside"] += d.secondary
            totals["rates_coded"] += d.coded
    return DisclosureSummary(active, policy, **totals)


def current_session() -> FilterSession | None:
    """The secure kernel's filter session, or None outside it."""
    from output_filters.kernel import extension

    return extension._session


def disclosure_summary(since: int = 0) -> DisclosureSummary:
    """What the filter of this kernel suppressed (from decision number ``since`` on)."""
    session = current_session()
    if session is None:
        return DisclosureSummary(False, None)
    return summarize(session.decisions[since:], session.policy)


def decision_count() -> int:
    """How many decisions the session holds now (a mark to pass to ``disclosure_summary``)."""
    session = current_session()
    return 0 if session is None else len(session.decisions)
