"""The user server's side of the filter's audit events: from each kernel's IOPub to the hub.

``AuditingKernelManager`` watches every kernel's IOPub channel (as the server's activity
watch does, whether or not a browser is connected) for ``enclave_event`` messages
(``kernels.events``) and posts them to the hub (``/hub/enclave/kernel-events``)
with the server's own hub token: the hub records them under the token's user. The kernel
never writes the audit database. The messages themselves never reach a browser
(``output_filters.server.guard`` drops them).

Without a hub (a server started by hand) events go to the server's log.
"""

from __future__ import annotations

import json
import logging
import os

from jupyter_client.session import Session
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from kernels.events import MESSAGE_TYPE

log = logging.getLogger("enclave.events")


def filter_event(msg: dict) -> dict | None:
    """The filter event (``{"event": ..., "details": {...}}``) a kernel message carries, or None.

    ``msg`` is a deserialized IOPub message (jupyter_client's form, as the server's watch and
    nbclient both see it). The same parsing serves the report runner (``templates.runner``),
    which runs its kernels without a server in between."""
    header = msg.get("header") or {}
    if header.get("msg_type", msg.get("msg_type")) != MESSAGE_TYPE:
        return None
    content = msg.get("content")
    if not isinstance(content, dict) or not isinstance(content.get("event"), str):
        return None
    details = content.get("details")
    return {"event": content["event"], "details": dict(details) if isinstance(details, dict) else {}}


def hub_events_url() -> str | None:
    api = os.environ.get("JUPYTERHUB_API_URL")
    return api.rstrip("/").removesuffix("/api") + "/enclave/kernel-events" if api else None


async def forward(events: list[dict], kernel_id: str) -> None:
    url, token = hub_events_url(), os.environ.get("JUPYTERHUB_API_TOKEN")
    if not url or not token:
        log.warning("Filter events (no hub to send them to): %s", json.dumps(events, default=str)[:2000])
        return
    for item in events:
        item.setdefault("details", {})["kernel"] = kernel_id
    request = HTTPRequest(
        url,
        method="POST",
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        body=json.dumps({"events": events}, default=str),
        request_timeout=30,
    )
    try:
        await AsyncHTTPClient().fetch(request)
    except Exception as error:  # the hub down or refusing: the server log keeps the event
        log.error("Could not send filter events to the hub (%s): %s", error, json.dumps(events, default=str)[:2000])


class AuditingKernelManager(AsyncMappingKernelManager):
    """The server's kernel manager, also forwarding each kernel's filter events to the hub."""

    def start_watching_activity(self, kernel_id: str) -> None:
        super().start_watching_activity(kernel_id)
        kernel = self._kernels[kernel_id]
        stream = kernel.connect_iopub()
        session = Session(config=kernel.session.config, key=kernel.session.key)

        def on_message(parts: list) -> None:
            _idents, rest = session.feed_identities(parts)
            event = filter_event(session.deserialize(rest))
            if event is not None:
                import asyncio

                asyncio.ensure_future(forward([event], kernel_id))

        stream.on_recv(on_message)
        kernel._enclave_events_stream = stream

    def stop_watching_activity(self, kernel_id: str) -> None:
        kernel = self._kernels.get(kernel_id)
        stream = getattr(kernel, "_enclave_events_stream", None)
        if stream is not None and not stream.socket.closed:
            stream.close()
        super().stop_watching_activity(kernel_id)
