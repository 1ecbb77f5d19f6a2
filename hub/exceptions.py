"""Errors raised by the hub: accounts, roles, audit."""

from __future__ import annotations


class HubError(Exception):
    """Base class of every hub error."""


class AccountError(HubError):
    """An account cannot be created or changed as asked."""


class AuditError(HubError):
    """The audit log cannot be written or read as asked."""


class ReleaseError(HubError):
    """A release request cannot move as asked (wrong status, owner or files)."""


class GovernanceError(HubError):
    """A policy change cannot be proposed or approved, or the policy file was edited by hand."""


class SignInRefused(HubError):
    """An account could not prove itself for a command (or has a step to take first): ``name``
    is the account, ``reason`` what the audit log recorded."""

    def __init__(self, name: str, message: str, reason: str):
        super().__init__(message)
        self.name = name
        self.reason = reason
