"""Errors raised by the output filter."""

from __future__ import annotations


class OutputFilterError(Exception):
    """Base class of every output-filter error."""


class PolicyError(OutputFilterError):
    """The policy file is missing, malformed, or has an unknown or invalid setting."""


class DisclosureError(OutputFilterError):
    """A computation on record-level data whose result could identify a student.

    ``rule`` names the disclosure rule that refused it (e.g. "extremes", "linked tables"),
    ``source`` the data it was computed from, ``conflicts_with`` the earlier outputs it would
    combine with, ``suggestion`` what would pass instead.
    """

    def __init__(
        self,
        reason: str,
        *,
        rule: str = "",
        source: str = "",
        conflicts_with: tuple[str, ...] = (),
        suggestion: str = "",
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rule = rule
        self.source = source
        self.conflicts_with = tuple(conflicts_with)
        self.suggestion = suggestion
