"""The ``enclave release`` commands: request, review and release results (principle 4).

Thin commands over ``hub.release.desk``: they validate, confirm, call and print. The commands
that act (request, approve, reject, resubmit, withdraw) take ``--as NAME``, the Enclave account
acting (default: the system user running the command), which must sign in with its password
and second factor (``hub.cli.acting``); the audit records both the account and the system user
(``via``). The commands that only read (list, show, diff, files) need no account.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import click

from hub.cli.acting import acting, signed_in
from hub.cli.errors import actor, call, confirm
from hub.release.desk import ReleaseDesk, Request, default_desk
from hub.release.states import Status


def _desk() -> ReleaseDesk:
    return default_desk(via=f"cli:{actor()}")


AS = acting("user")
AS_REVIEWER = acting("reviewer")
FILES = click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))


def _say(request: Request) -> None:
    click.echo(f"Request {request.id} (round {request.round}) is {request.status.value}; next: {request.owner}.")
    refusing = [f for f in request.findings if f["refuses"]]
    for finding in request.findings:
        kind = "REFUSED" if finding["refuses"] else "note"
        click.echo(f"  {kind}: {finding['file']}, {finding['where']}: {finding['message']}")
    if request.status == Status.IN_REVIEW:
        waiting = ", ".join(m["code"] for m in request.pending_members())
        click.echo(f"  waiting for the reviewers of: {waiting}")
    elif request.status == Status.RETURNED and refusing:
        click.echo(f"  fix the files, then `enclave release resubmit {request.id} FILE...`")


@click.group()
def release() -> None:
    """Release review: nothing leaves the consortium unless every member approves."""


@release.command("request")
@FILES
@click.option("--purpose", required=True, help="What the release is for, and for whom.")
@AS
def release_request(paths: tuple[Path, ...], purpose: str, account: str | None, password_stdin: bool) -> None:
    """Ask to release FILE... (.ipynb, .html, .csv, .png from a workspace or a report's output)."""
    name = signed_in(account, password_stdin)
    request = call(lambda: _desk().submit(name, list(paths), purpose))
    _say(request)


@release.command("list")
@click.option("--status", type=click.Choice([s.value for s in Status]), help="Only requests in this status.")
def release_list(status: str | None) -> None:
    """Requests, oldest first: number, status, requester, files, purpose."""
    found = call(lambda: _desk().list(Status(status) if status else None))
    for request in found:
        names = ", ".join(f.name for f in request.files)
        click.echo(f"{request.id:>4}  {request.status.value:<10} {request.requester:<16} {names}  ({request.purpose})")
    if not found:
        click.echo("No release requests.")


@release.command("show")
@click.argument("request_id", type=int)
def release_show(request_id: int) -> None:
    """One request: files with checksums, findings, decisions, history."""
    desk = _desk()
    request = call(lambda: desk.get(request_id))
    click.echo(f"Request {request.id} by {request.requester}: {request.purpose}")
    _say(request)
    for item in request.files:
        outgoing = item.outgoing_sha256 or "-"
        click.echo(f"  file {item.name}: sha256 {item.sha256} (as it leaves: {outgoing}) from {item.source}")
    for decision in request.decisions:
        verdict = "approved" if decision.approve else "rejected"
        click.echo(f"  {decision.institution}: {verdict} by {decision.reviewer} {decision.comment}".rstrip())
    for at, status, who, note in desk.history(request.id):
        click.echo(f"  {at:%Y-%m-%d %H:%M} {status:<10} {who} {note}".rstrip())


@release.command("diff")
@click.argument("request_id", type=int)
def release_diff(request_id: int) -> None:
    """What would leave, beside what was requested: each file's changes (the neutral labels), as
    the review page shows them side by side."""
    desk = _desk()
    request = call(lambda: desk.get(request_id))
    for item in request.files:
        original = desk.directory(request, "original") / item.name
        outgoing = desk.directory(request, "outgoing") / item.name
        if not outgoing.is_file():
            click.echo(f"{item.name}: not re-checked (nothing would leave)")
            continue
        if item.name.lower().endswith(".png"):
            click.echo(f"{item.name}: an image, leaves as requested; look at it: {outgoing}")
            continue
        before = original.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        after = outgoing.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        lines = list(difflib.unified_diff(before, after, f"{item.name} (as requested)", f"{item.name} (as it leaves)"))
        click.echo("".join(lines).rstrip("\n") if lines else f"{item.name}: leaves as requested")


@release.command("approve")
@click.argument("request_id", type=int)
@click.option("--comment", default="", help="A note for the record.")
@AS_REVIEWER
def release_approve(request_id: int, comment: str, account: str | None, password_stdin: bool) -> None:
    """Approve REQUEST_ID for your institution (reviewers; not your own request)."""
    name = signed_in(account, password_stdin)
    _say(call(lambda: _desk().decide(request_id, name, True, comment)))


@release.command("reject")
@click.argument("request_id", type=int)
@click.option("--comment", required=True, help="What the requester must change.")
@AS_REVIEWER
def release_reject(request_id: int, comment: str, account: str | None, password_stdin: bool) -> None:
    """Reject REQUEST_ID for your institution: it returns to the requester with your comment."""
    name = signed_in(account, password_stdin)
    _say(call(lambda: _desk().decide(request_id, name, False, comment)))


@release.command("resubmit")
@click.argument("request_id", type=int)
@FILES
@AS
def release_resubmit(request_id: int, paths: tuple[Path, ...], account: str | None, password_stdin: bool) -> None:
    """Send a returned request again with corrected FILE...: re-checked and reviewed anew."""
    name = signed_in(account, password_stdin)
    _say(call(lambda: _desk().resubmit(request_id, name, list(paths))))


@release.command("withdraw")
@click.argument("request_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@AS
def release_withdraw(request_id: int, yes: bool, account: str | None, password_stdin: bool) -> None:
    """Withdraw your request (its record stays)."""
    name = signed_in(account, password_stdin)
    confirm(yes, f"Withdraw release request {request_id}?")
    _say(call(lambda: _desk().withdraw(request_id, name)))


@release.command("files")
@click.argument("request_id", type=int)
def release_files(request_id: int) -> None:
    """Where a released request's files are, with their checksums (SHA256SUMS)."""
    desk = _desk()
    request = call(lambda: desk.get(request_id))
    if request.status != Status.RELEASED:
        raise click.ClickException(f"request {request_id} is {request.status.value}: nothing is released yet")
    area = desk.release_area(request.id)
    click.echo(f"Released to {area}:")
    for item in request.files:
        click.echo(f"  {item.outgoing_sha256}  {item.name}")
