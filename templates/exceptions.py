"""Errors raised by the metrics and the report runner."""

from __future__ import annotations


class TemplateError(Exception):
    """A template is unknown, a parameter is wrong, or the report failed to run."""


class MetricError(TemplateError):
    """A metric cannot be computed as asked (an unknown disaggregation, an empty cohort)."""


class RunFailed(TemplateError):
    """The report's kernel started and the run failed: ``run`` is its id (in its audit events)."""

    def __init__(self, message: str, run: str):
        super().__init__(message)
        self.run = run
