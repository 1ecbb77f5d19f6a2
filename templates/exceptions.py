"""Errors raised by the report runner."""

from __future__ import annotations


class TemplateError(Exception):
    """A template is unknown, a parameter is wrong, or the report failed to run."""
