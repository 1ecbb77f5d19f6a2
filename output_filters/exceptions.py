"""Errors raised by the output filter."""

from __future__ import annotations


class OutputFilterError(Exception):
    """Base class of every output-filter error."""


class PolicyError(OutputFilterError):
    """The policy file is missing, malformed, or has an unknown or invalid setting."""


class DisclosureError(OutputFilterError):
    """A computation on record-level data whose result could identify a student."""
