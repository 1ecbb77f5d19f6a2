"""Hub admin actions on other users, in the audit log: the hub's request log hook.

Every request the hub answers passes ``log_request`` (JupyterHub's ``log_function``). Those
where one account (or service) acts on another user's server, tokens or account — starting or
stopping a server, opening it, issuing or revoking a token, changing or deleting the user —
are recorded with the actor, the user acted on, the method, the path and the outcome. A
user's own actions are not admin actions and are not recorded here.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qs, urlparse

from jupyterhub.log import log_request as jupyterhub_log_request

from hub.audit import AuditLog

log = logging.getLogger("enclave.admin_actions")
ACTIONS: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (
        re.compile(r"^/hub/api/users/([^/]+)/servers?(?:/[^/]*)?$"),
        {"POST": "hub.admin.server.start", "DELETE": "hub.admin.server.stop"},
    ),
    (
        re.compile(r"^/hub/api/users/([^/]+)/tokens(?:/[^/]*)?$"),
        {"POST": "hub.admin.token.issue", "DELETE": "hub.admin.token.revoke"},
    ),
    (
        re.compile(r"^/hub/api/users/([^/]+)$"),
        {"POST": "hub.admin.user.add", "PATCH": "hub.admin.user.change", "DELETE": "hub.admin.user.delete"},
    ),
    (
        re.compile(r"^/hub/spawn/([^/]+)(?:/[^/]*)?$"),
        {"POST": "hub.admin.server.start", "GET": "hub.admin.server.start"},
    ),
    (re.compile(r"^/hub/user/([^/]+)(?:/.*)?$"), {"GET": "hub.admin.server.open"}),
]
AUTHORIZE = re.compile(r"^/hub/api/oauth2/authorize$")
SERVER_CLIENT = "jupyterhub-user-"


def admin_action(method: str, uri: str, actor: str) -> tuple[str, str] | None:
    """(event, user acted on) if ``actor`` acting with ``method`` on ``uri`` acts on another user."""
    parsed = urlparse(uri)
    path = parsed.path
    target = event = None
    if AUTHORIZE.match(path):
        client = (parse_qs(parsed.query).get("client_id") or [""])[0]
        if client.startswith(SERVER_CLIENT):
            target, event = client[len(SERVER_CLIENT) :], "hub.admin.server.open"
    else:
        for pattern, events in ACTIONS:
            match = pattern.match(path)
            if match and method in events:
                target, event = match.group(1), events[method]
                break
    if target is None or event is None or target == actor:
        return None
    return event, target


def _actor(handler) -> str | None:
    who = getattr(handler, "_jupyterhub_user", None)
    if who is None:
        return None
    kind = getattr(who, "kind", "user")
    return f"service:{who.name}" if kind == "service" else who.name


def log_request(handler) -> None:
    """JupyterHub's request log, then the audit event of an admin action (never failing the log)."""
    jupyterhub_log_request(handler)
    try:
        actor = _actor(handler)
        if actor is None:
            return
        found = admin_action(handler.request.method, handler.request.uri, actor)
        if found is None:
            return
        event, target = found
        AuditLog().record(
            actor,
            event,
            user=target,
            method=handler.request.method,
            path=urlparse(handler.request.uri).path,
            status=handler.get_status(),
            source=handler.request.remote_ip,
        )
    except Exception:  # the audit must not take the hub's request log down with it
        log.exception("could not record an admin action in the audit log")
