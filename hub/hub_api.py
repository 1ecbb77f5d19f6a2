"""The ``enclave`` command's door to the running hub: its own service token, loopback only.

Used where an account change must reach the hub at once: disabling an account stops its
server and deletes the hub's record of the user (its tokens and cookie id with it).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

from warehouse.settings import state_path

TOKEN = "cli-token"  # var/secrets/cli-token, registered as the enclave-cli service


def api_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('ENCLAVE_HUB_PORT', '8081')}/hub/api"


def _token() -> str | None:
    path = state_path("secrets", TOKEN)
    return path.read_text().strip() if path.exists() else None


def request(method: str, path: str, timeout: float = 30) -> tuple[int, dict | None] | None:
    """(status, JSON body) of a hub API call, or None when no hub is running here."""
    token = _token()
    if token is None:
        return None
    call = urllib.request.Request(f"{api_url()}{path}", method=method, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(call, timeout=timeout) as response:
            body = response.read()
            return response.status, (json.loads(body) if body else None)
    except urllib.error.HTTPError as error:
        return error.code, None
    except OSError:
        return None


def end_user(name: str) -> str:
    """Stop ``name``'s server and delete the hub's user record; a sentence saying what happened."""
    found = request("GET", f"/users/{name}")
    if found is None:
        return "the hub is not running here; nothing to stop (its logins check the account at every refresh)"
    if found[0] == 404:
        return "the hub has no session, server or token of theirs"
    deleted = request("DELETE", f"/users/{name}", timeout=120)
    if deleted is None or deleted[0] not in (200, 204):
        return f"the hub refused to end their session (HTTP {deleted[0] if deleted else '?'}); check the hub log"
    return "their server is stopped and every hub token and session of theirs is revoked"
