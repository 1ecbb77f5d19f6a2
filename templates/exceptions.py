"""Errors raised by the metrics and the report runner."""

from __future__ import annotations


class TemplateError(Exception):
    """A template is unknown, a parameter is wrong, or the report failed to run."""


class MetricError(TemplateError):
    """A metric cannot be computed as asked (an unknown disaggregation, an empty cohort)."""
