"""The ``enclave policy`` commands: the policy changes only by unanimous agreement (principle 10).

``propose`` records one change with its reason; ``approve`` and ``reject`` are each member
institution's admin's decision; the last approval writes policy.toml. Those three act as
``--as NAME`` (default: the system user's name), which must sign in with its password and
second factor (``hub.cli.acting``); their audit events carry the system user too (``via``).
``show`` prints the policy in effect (and refuses, like the hub's start, if the file was
edited by hand); ``history`` lists every proposal with its decisions; neither needs an account.
"""

from __future__ import annotations

import click

from hub.cli.acting import acting, signed_in
from hub.cli.errors import actor, call
from hub.governance import Governance, Proposal, default_governance


def _governance() -> Governance:
    return default_governance(via=f"cli:{actor()}")


AS = acting("admin")


def _say(proposal: Proposal) -> None:
    click.echo(
        f"Proposal {proposal.id}: {proposal.key} = {proposal.value!r} (now {proposal.previous!r}), "
        f"by {proposal.proposer}: {proposal.status}."
    )
    for institution, admin, approve, comment in proposal.approvals:
        click.echo(f"  {institution}: {'approved' if approve else 'rejected'} by {admin} {comment}".rstrip())
    if proposal.status == "open":
        click.echo(f"  waiting for the admins of: {', '.join(proposal.pending())}")
    elif proposal.status == "in_effect":
        click.echo("  In effect in the policy file; restart the hub (and user servers) for it to apply.")


@click.group()
def policy() -> None:
    """The consortium's policy and its changes (unanimous, principle 10)."""


@policy.command("propose")
@click.argument("assignment", metavar="KEY=VALUE")
@click.option("--reason", required=True, help="Why the consortium should change it.")
@AS
def policy_propose(assignment: str, reason: str, account: str | None, password_stdin: bool) -> None:
    """Propose one change, e.g. `threshold=11` or `accounts.lockout_minutes=30`."""
    key, sep, value = assignment.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise click.ClickException(f"{assignment!r}: write KEY=VALUE, e.g. threshold=11")
    name = signed_in(account, password_stdin)
    _say(call(lambda: _governance().propose(name, key.strip(), value.strip(), reason)))


@policy.command("approve")
@click.argument("proposal_id", type=int)
@click.option("--comment", default="", help="A note for the record.")
@AS
def policy_approve(proposal_id: int, comment: str, account: str | None, password_stdin: bool) -> None:
    """Approve PROPOSAL_ID for your institution; the last approval puts it in effect."""
    name = signed_in(account, password_stdin)
    _say(call(lambda: _governance().decide(proposal_id, name, True, comment)))


@policy.command("reject")
@click.argument("proposal_id", type=int)
@click.option("--comment", required=True, help="Why your institution does not agree.")
@AS
def policy_reject(proposal_id: int, comment: str, account: str | None, password_stdin: bool) -> None:
    """Reject PROPOSAL_ID for your institution: the change does not happen."""
    name = signed_in(account, password_stdin)
    _say(call(lambda: _governance().decide(proposal_id, name, False, comment)))


@policy.command("history")
def policy_history() -> None:
    """Every proposal, oldest first, with its decisions."""
    found = call(lambda: _governance().history())
    for proposal in found:
        _say(proposal)
        click.echo(f"  reason: {proposal.reason} ({proposal.created_at:%Y-%m-%d})")
    if not found:
        click.echo("No policy proposals yet.")


@policy.command("show")
def policy_show() -> None:
    """The policy in effect, key by key (refused if the file was edited by hand)."""
    from hub.governance import policy_values

    governance = _governance()
    values = policy_values(call(lambda: governance.check_governed(actor())))
    click.echo(f"Policy file {governance.path} (every value as approved):")
    for key, value in values.items():
        click.echo(f"  {key} = {value!r}")
