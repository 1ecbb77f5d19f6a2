"""The kernel's last check on every message that carries output, and its seal.

Everything the kernel shows leaves through one Jupyter ``Session.send``: results, displays,
printed text, errors, widget messages. The gate wraps it:

- once the filter has been tampered with (``output_filters.kernel.tamper``), every output is
  replaced by a notice until the kernel restarts;
- an output of a cell that also read a small ``len()`` of record-level data, and shows that
  number, is replaced by a notice (``len`` must return a plain int, so it cannot carry a mark);
- every output that passes is sealed: an HMAC over its type and content, under a key the
  user server gave this kernel (``ENCLAVE_OUTPUT_KEY``), goes into the message metadata.
  The server-side guard (``output_filters.server.guard``) replaces any output that arrives
  without a valid seal, so output that did not come through this gate never reaches a browser.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

OUTPUT_TYPES = frozenset(
    {"stream", "display_data", "execute_result", "update_display_data", "error", "comm_open", "comm_msg"}
)
SEAL = "enclave_seal"
KEY_VARIABLE = "ENCLAVE_OUTPUT_KEY"  # how the user server hands a kernel its sealing key
TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex")


def seal(key: bytes, msg_type: str, content: dict) -> str:
    """The seal of an output: HMAC-SHA256 of its type and canonical JSON content."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hmac.new(key, f"{msg_type}\n{text}".encode(), hashlib.sha256).hexdigest()


def notice_content(msg_type: str, content: dict, reason: str) -> dict:
    """``content`` with what it shows replaced by a one-line notice."""
    text = f"Blocked: {reason}"
    if msg_type == "stream":
        return {"name": content.get("name", "stdout"), "text": text + "\n"}
    if msg_type in ("display_data", "execute_result", "update_display_data"):
        replaced = {k: v for k, v in content.items() if k not in ("data", "metadata")}
        return {**replaced, "data": {"text/plain": text}, "metadata": {}}
    if msg_type == "error":
        return {"ename": "Blocked", "evalue": reason, "traceback": [text]}
    return {**content, "data": {}}  # comm messages: the widget shows nothing


class Gate:
    """Wraps ``session.send`` of a kernel; see the module docstring."""

    def __init__(self, session: Any, key: bytes | None, refusal: Callable[[], str | None]):
        self.session = session
        self.key = key
        self.refusal = refusal
        self.original = session.send
        session.send = self.send

    def send(
        self,
        stream,
        msg_or_type,
        content=None,
        parent=None,
        ident=None,
        buffers=None,
        track=False,
        header=None,
        metadata=None,
    ):
        if isinstance(msg_or_type, dict):
            msg_type = msg_or_type["header"]["msg_type"]
            body = msg_or_type["content"]
        else:
            msg_type, body = msg_or_type, content if content is not None else {}
        if msg_type in OUTPUT_TYPES:
            body = self.check(msg_type, body)
            if isinstance(msg_or_type, dict):
                msg_or_type["content"] = body
                target = msg_or_type.setdefault("metadata", {})
            else:
                content = body
                metadata = dict(metadata or {})
                target = metadata
            if self.key is not None:
                target[SEAL] = seal(self.key, msg_type, body)
        return self.original(
            stream,
            msg_or_type,
            content=content,
            parent=parent,
            ident=ident,
            buffers=buffers,
            track=track,
            header=header,
            metadata=metadata,
        )

    def check(self, msg_type: str, content: dict) -> dict:
        reason = self.refusal()
        if reason:
            return notice_content(msg_type, content, reason)
        return content
