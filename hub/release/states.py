"""The release request's state machine, as data: transitions, owners and audit events.

One map says where a request may go from each status; one says who acts on a request in that
status; one names the audit event written when a request enters it. ``hub.release.desk``
checks every move against ``TRANSITIONS`` before it writes it, and the README's diagram is
``diagram()``'s output. The one guarded edge: into ``APPROVED`` only when every member
institution's reviewer approved the current round (``desk.check_all_approved``).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    SUBMITTED = "submitted"  # files and checksums recorded; the automated re-check runs
    IN_REVIEW = "in_review"  # the re-check passed; every member's reviewer decides
    RETURNED = "returned"  # the re-check failed or a reviewer rejected: back to the requester
    APPROVED = "approved"  # every member approved; the files go to the release area
    RELEASED = "released"  # in the release area with checksums; the requester downloads
    WITHDRAWN = "withdrawn"  # the requester gave up; the record stays


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.SUBMITTED: frozenset({Status.IN_REVIEW, Status.RETURNED, Status.WITHDRAWN}),
    Status.IN_REVIEW: frozenset({Status.APPROVED, Status.RETURNED, Status.WITHDRAWN}),
    Status.RETURNED: frozenset({Status.SUBMITTED, Status.WITHDRAWN}),
    Status.APPROVED: frozenset({Status.RELEASED}),
    Status.RELEASED: frozenset(),
    Status.WITHDRAWN: frozenset(),
}

OWNERS: dict[Status, str] = {
    Status.SUBMITTED: "system",  # the automated re-check
    Status.IN_REVIEW: "reviewers",  # one reviewer of every member institution
    Status.RETURNED: "requester",  # fix and resubmit, or withdraw
    Status.APPROVED: "system",  # copies the files to the release area
    Status.RELEASED: "requester",  # downloads from the release area
    Status.WITHDRAWN: "nobody",
}

EVENTS: dict[Status, str] = {
    Status.SUBMITTED: "release.request",
    Status.IN_REVIEW: "release.recheck.passed",
    Status.RETURNED: "release.return",
    Status.APPROVED: "release.approve",
    Status.RELEASED: "release.release",
    Status.WITHDRAWN: "release.withdraw",
}

DECISION_EVENT = "release.decide"  # one reviewer's approval or rejection (no status change by itself)
TERMINAL = frozenset(status for status, nexts in TRANSITIONS.items() if not nexts)


def can_move(current: Status, target: Status) -> bool:
    return target in TRANSITIONS[current]


def diagram() -> str:
    """The state machine as a Mermaid diagram (README, "Release review")."""
    lines = ["stateDiagram-v2", f"    [*] --> {Status.SUBMITTED.value}"]
    for status, nexts in TRANSITIONS.items():
        for target in sorted(nexts):
            lines.append(f"    {status.value} --> {target.value}: {EVENTS[target]}")
    lines += [f"    {status.value} --> [*]" for status in sorted(TERMINAL)]
    lines += [f"    note right of {status.value}: {OWNERS[status]}" for status in Status]
    return "\n".join(lines)
