"""Errors raised by the hub: accounts, roles, audit."""

from __future__ import annotations


class HubError(Exception):
    """Base class of every hub error."""


class AccountError(HubError):
    """An account cannot be created or changed as asked."""
