"""The guard outside the kernel: the user's Jupyter server re-checks what leaves.

Cell code never runs in the server process, so code in a notebook cannot change this guard.
It relies on the kernel's gate (``output_filters.kernel.gate``):

- ``SealedKernelManager`` gives every kernel it starts a fresh random key
  (``ENCLAVE_OUTPUT_KEY``, read and removed from the environment by the kernel's filter);
- ``GuardedWebsocketConnection`` checks every kernel→browser message on the IOPub channel
  (replays too): an output without a valid seal — from a kernel without the filter, a message
  sent around the gate, or anything forged — is replaced by a blocked notice, and the event is
  logged. Outputs that pass are remembered (``PassedOutputs``);
- ``pre_save_hook`` re-checks every notebook saved through the server: an output must be one
  that passed the websocket guard in this server, or one that was already in the file;
  anything else is replaced by a blocked notice before it reaches the disk.

What it cannot do: the kernel runs as the same system user and holds its key in memory, so a
determined user can read the key and seal anything, or write files directly. That is why
releases go through review and every account is accountable (README, "Limits").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from typing import Any

import nbformat
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from jupyter_server.services.kernels.kernelmanager import ServerKernelManager

from kernels.events import MESSAGE_TYPE as EVENT_TYPE
from output_filters.kernel.gate import KEY_VARIABLE, OUTPUT_TYPES, SEAL, notice_content, seal

log = logging.getLogger("enclave.guard")
V1 = "v1.kernel.websocket.jupyter.org"
UNSEALED = "this output did not come through the output filter"


class SealedKernelManager(ServerKernelManager):
    """Starts kernels with a per-kernel key for sealing outputs."""

    @property
    def seal_key(self) -> bytes:
        if not hasattr(self, "_seal_key"):
            self._seal_key = secrets.token_bytes(32)
        return self._seal_key

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        env = dict(kw.get("env") or os.environ)
        env[KEY_VARIABLE] = self.seal_key.hex()
        kw["env"] = env
        return await super()._async_launch_kernel(kernel_cmd, **kw)


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _joined(value: Any) -> Any:
    """nbformat may store multi-line strings as lists of lines."""
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    return value


class PassedOutputs:
    """What the websocket guard let through in this server process, to re-check saves."""

    def __init__(self) -> None:
        self.digests: set[str] = set()
        self.streams: set[str] = set()

    def add(self, msg_type: str, content: dict) -> None:
        if msg_type == "stream":
            self.streams.add(str(content.get("text", "")))
        elif msg_type == "error":
            self.digests.add(_digest(["error", content.get("ename"), content.get("evalue")]))
        elif "data" in content:
            self.digests.add(_digest({k: _joined(v) for k, v in content["data"].items()}))

    def allows(self, output: dict) -> bool:
        kind = output.get("output_type")
        if kind == "stream":
            return self._made_of_streams(str(_joined(output.get("text", ""))))
        if kind == "error":
            return _digest(["error", output.get("ename"), output.get("evalue")]) in self.digests
        return _digest({k: _joined(v) for k, v in (output.get("data") or {}).items()}) in self.digests

    def _made_of_streams(self, text: str) -> bool:
        """True if ``text`` is a concatenation of passed stream chunks (the browser merges them)."""
        lengths = sorted({len(chunk) for chunk in self.streams if chunk})
        reachable = [False] * (len(text) + 1)
        reachable[0] = True
        for start in range(len(text)):
            if reachable[start]:
                for length in lengths:
                    end = start + length
                    if end <= len(text) and text[start:end] in self.streams:
                        reachable[end] = True
        return reachable[len(text)]


PASSED = PassedOutputs()


def check_message(key: bytes | None, msg_type: str, content: dict, metadata: dict) -> dict | None:
    """None if the message may pass; otherwise the content to send instead."""
    if msg_type not in OUTPUT_TYPES:
        return None
    given = (metadata or {}).get(SEAL, "")
    if key is not None and hmac.compare_digest(str(given), seal(key, msg_type, content)):
        PASSED.add(msg_type, content)
        return None
    log.warning("Blocked an unsealed %s message", msg_type)
    return notice_content(msg_type, content, UNSEALED)


class GuardedWebsocketConnection(ZMQChannelsWebsocketConnection):
    """Re-checks every kernel→browser message before it is written to the websocket."""

    def _on_zmq_reply(self, stream, msg_or_parts):
        if getattr(stream, "channel", None) == "iopub":
            key = getattr(self.kernel_manager, "seal_key", None)
            if isinstance(msg_or_parts, dict):
                msg = msg_or_parts
                if msg["header"]["msg_type"] == EVENT_TYPE:
                    return None  # for the audit (output_filters.server.events), not the browser
                replacement = check_message(key, msg["header"]["msg_type"], msg["content"], msg["metadata"])
                if replacement is not None:
                    msg["content"], msg["buffers"] = replacement, []
            else:  # v1 binary protocol: [header, parent, metadata, content, *buffers], still packed
                parts = list(msg_or_parts)
                header, metadata, content = (self.session.unpack(parts[i]) for i in (0, 2, 3))
                if header["msg_type"] == EVENT_TYPE:
                    return None
                replacement = check_message(key, header["msg_type"], content, metadata)
                if replacement is not None:
                    msg_or_parts = [*parts[:3], self.session.pack(replacement)]
        return super()._on_zmq_reply(stream, msg_or_parts)


def pre_save_hook(model: dict, path: str, contents_manager: Any, **kwargs: Any) -> None:
    """Replace outputs of a saved notebook that neither passed the guard nor were on disk."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    known = _outputs_on_disk(contents_manager, path)
    blocked = 0
    for cell in model["content"].get("cells", []):
        outputs = cell.get("outputs") or []
        for index, output in enumerate(outputs):
            if PASSED.allows(output) or _digest(_normalized(output)) in known:
                continue
            blocked += 1
            outputs[index] = {"output_type": "stream", "name": "stdout", "text": f"Blocked: {UNSEALED}\n"}
    if blocked:
        log.warning("Replaced %d unchecked output(s) in %s on save", blocked, path)


def _normalized(output: dict) -> dict:
    return {
        k: (_joined(v) if k != "data" else {m: _joined(d) for m, d in v.items()})
        for k, v in output.items()
        if k not in ("execution_count", "metadata", "transient")
    }


def _outputs_on_disk(contents_manager: Any, path: str) -> set[str]:
    try:
        os_path = contents_manager._get_os_path(path)
        notebook = nbformat.read(os_path, as_version=4)
    except Exception:  # a new file, or not readable as a notebook: nothing known
        return set()
    return {_digest(_normalized(dict(o))) for c in notebook.cells for o in c.get("outputs", [])}
