"""What the audit keeps of a kernel's filter events, whoever hands them in.

Two paths bring a kernel's filter events (``kernels.events``) to the audit log: a user's
Jupyter server posts them to the hub (``hub.web.KernelEventsHandler``), and the report runner
collects them from the report kernel's IOPub (``templates.runner``) for ``enclave report``. Both
go through ``audit_entry`` here, so both keep the same events and the same details: known event
names only, small plain values, and never a detail that would name someone: the account is the
one the event is recorded under (the server's token, the command's user), never one the kernel
wrote into the event.
"""

from __future__ import annotations

from typing import Any

# What a kernel may report of its filter (output_filters.server.events forwards these).
KERNEL_EVENTS = frozenset({"data.load", "output.suppressed", "output.blocked", "output.refused", "tamper"})
# Details a kernel may not set: who the event is about is the recorder's to say.
RESERVED = frozenset({"event", "name", "actor", "user"})
MAX_EVENTS = 50  # per post to the hub
MAX_RUN_EVENTS = 1000  # per report run (a report shows a few dozen tables)


def plain(value: Any, depth: int = 0) -> Any:
    """A detail as the audit keeps it: numbers, short strings, small lists and maps of them."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        return value[:300]
    if isinstance(value, list | tuple) and depth < 2:
        return [plain(v, depth + 1) for v in list(value)[:20]]
    if isinstance(value, dict) and depth < 2:
        return {str(k)[:60]: plain(v, depth + 1) for k, v in list(value.items())[:20]}
    return str(value)[:300]


def audit_entry(item: Any) -> tuple[str, dict] | None:
    """The audit event name (``kernel.…``) and details of one posted event; None to drop it."""
    if not isinstance(item, dict) or item.get("event") not in KERNEL_EVENTS:
        return None
    details = plain(item.get("details") or {})
    details = details if isinstance(details, dict) else {"details": details}
    return f"kernel.{item['event']}", {k: v for k, v in details.items() if k not in RESERVED}
