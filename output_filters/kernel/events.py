"""A record of the filter's notable decisions (tampering, for now), for the administrators.

One JSON line per event in ``var/logs/filter-events.log``: time, user, kernel process, event.
A kernel running as a user's own system account cannot write there; the line then goes to the
kernel's standard error, which the hub's account collects in its own log, out of the user's reach.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime

from warehouse import identity
from warehouse.settings import state_path


def record(event: str, **details) -> None:
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
