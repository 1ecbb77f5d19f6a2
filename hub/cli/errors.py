"""What every ``enclave`` command shares: turning expected errors into messages, the actor,
confirmations and progress bars.

An expected error (``HubError``, ``WarehouseError``, ``OutputFilterError``, a template's
error) becomes a ``click.ClickException`` carrying its message, which names the thing and the
fix; an upload's rejection prints its whole report. Anything else is a bug and shows its
traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from hub.exceptions import HubError
from output_filters.exceptions import OutputFilterError
from warehouse.exceptions import UploadRejected, WarehouseError

EXPECTED: tuple[type[Exception], ...] = (HubError, WarehouseError, OutputFilterError)


def fail(error: Exception) -> click.ClickException:
    """The message a user sees for an expected error."""
    if isinstance(error, UploadRejected):
        return click.ClickException(error.report())
    return click.ClickException(str(error))


@contextmanager
def expected(*more: type[Exception]) -> Iterator[None]:
    """Expected errors (and ``more``) in the block become one-line messages, exit status 1."""
    try:
        yield
    except (*EXPECTED, *more) as error:
        raise fail(error) from None


def call(action: Callable, *more: type[Exception]):
    """``action()``, with expected errors as messages."""
    with expected(*more):
        return action()


def actor() -> str:
    """Who runs the command: the administrator behind sudo, or the system user."""
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or "admin"


def confirm(yes: bool, question: str) -> None:
    """Ask ``question`` unless ``--yes`` was given; no aborts the command."""
    if not yes:
        click.confirm(question, abort=True)


def advance(bar) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that moves a click progress bar."""

    def move(done: int, total: int) -> None:
        bar.length = max(total, 1)
        bar.update(done - bar.pos)

    return move
