"""A record of the filter's notable decisions (tampering, for now), for the administrators.

One JSON line per event in ``var/logs/filter-events.log``: time, user, kernel process, event.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from warehouse.settings import state_path


def record(event: str, **details) -> None:
    line = {
        "at": datetime.now(UTC).isoformat(),
        "user": os.environ.get("ENCLAVE_USER") or os.environ.get("USER", ""),
        "pid": os.getpid(),
        "event": event,
        **details,
    }
    try:
        with state_path("logs", "filter-events.log").open("a", encoding="utf-8") as log:
            log.write(json.dumps(line, default=str) + "\n")
    except OSError:  # the refusal stands even if the log cannot be written
        pass
