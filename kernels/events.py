"""The filter's notable decisions, for the audit log: loads, suppressions, blocks, tampering.

Each event names the rule and the table's shape, never a value. The kernel does not write the
audit database (it runs the researcher's code): it sends the event on its IOPub channel as an
``enclave_event`` message, which the user's Jupyter server (``output_filters.server.events``)
forwards to the hub under the server's own token, so the event is the user's, whatever the
kernel claims. Outside a kernel (a script, a test) the event goes to ``var/logs/filter-events.log``,
or to standard error when that is not writable.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime

from warehouse import identity
from warehouse.settings import state_path

MESSAGE_TYPE = "enclave_event"


def _kernel():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is part of every kernel
        return None
    shell = get_ipython()
    return getattr(shell, "kernel", None) if shell is not None else None


def in_kernel() -> bool:
    """True in a kernel, where ``record`` sends events on IOPub (for the user's server)."""
    kernel = _kernel()
    return kernel is not None and getattr(kernel, "iopub_socket", None) is not None


def record(event: str, **details) -> None:
    details = json.loads(json.dumps(details, default=str))
    kernel = _kernel()
    if kernel is not None and getattr(kernel, "iopub_socket", None) is not None:
        kernel.session.send(
            kernel.iopub_socket,
            MESSAGE_TYPE,
            {"event": event, "details": details},
            parent=kernel.get_parent("shell") if hasattr(kernel, "get_parent") else None,
            ident=b"enclave_event",
        )
        return
    line = {
        "at": datetime.now(UTC).isoformat(),
        # the account the kernel runs as, not an environment variable cell code could change
        "user": identity.current_user() or os.environ.get("USER", ""),
        "pid": os.getpid(),
        "event": event,
        **details,
    }
    text = json.dumps(line, default=str)
    try:
        with state_path("logs", "filter-events.log").open("a", encoding="utf-8") as log:
            log.write(text + "\n")
    except OSError:  # not the hub's account: the hub's log gets it through standard error
        print(f"enclave filter event: {text}", file=sys.__stderr__, flush=True)
