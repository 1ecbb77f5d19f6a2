"""A real ``enclave`` kernel driven over the Jupyter protocol, for tests.

``run(code)`` executes a cell and returns an ``Outputs`` holding everything that reached
the client: streams, results and displays in every MIME type, errors, and the filter's audit
events (``enclave_event`` messages, which a user's server forwards to the hub). Unless ``env``
names one, the kernel gets a fresh ledger directory of its own.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field

from jupyter_client.manager import KernelManager


@dataclass
class Outputs:
    texts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    widgets: list[str] = field(default_factory=list)  # data of widget (comm) messages, as JSON
    tracebacks: list[str] = field(default_factory=list)  # the text of each error's traceback
    events: list[dict] = field(default_factory=list)  # the filter's audit events (enclave_event messages)

    @property
    def all(self) -> str:
        return "\n".join(self.texts + self.errors + self.widgets)

    def __contains__(self, text: str) -> bool:
        return text in self.all


class KernelSession:
    def __init__(self, env: dict[str, str] | None = None, kernel_name: str = "enclave", cwd: str | None = None):
        self.manager = KernelManager(kernel_name=kernel_name)
        environment = dict(os.environ, **(env or {}))
        if "ENCLAVE_LEDGER_DIR" not in (env or {}):  # a ledger of its own, never the developer's
            environment["ENCLAVE_LEDGER_DIR"] = tempfile.mkdtemp(prefix="ledger-")
        self.manager.start_kernel(env=environment, cwd=cwd)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)
        self.events: list[dict] = []  # every filter event the kernel sent, across cells

    def run(self, code: str, timeout: float = 120) -> Outputs:
        outputs = Outputs()

        def hook(message: dict) -> None:
            kind = message["header"]["msg_type"]
            content = message["content"]
            if kind == "stream":
                outputs.texts.append(content["text"])
            elif kind in ("execute_result", "display_data", "update_display_data"):
                outputs.texts.extend(str(value) for value in content["data"].values())
            elif kind == "error":
                outputs.errors.append(f"{content['ename']}: {content['evalue']}")
                outputs.tracebacks.append("\n".join(content.get("traceback", [])))
            elif kind in ("comm_open", "comm_msg"):
                outputs.widgets.append(json.dumps(content.get("data", {})))
            elif kind == "enclave_event":
                outputs.events.append(content)
                self.events.append(content)

        self.client.execute_interactive(code, output_hook=hook, timeout=timeout, allow_stdin=False)
        return outputs

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
