"""Enclave's roles as JupyterHub RBAC roles (``load_roles``), attached to login groups.

Every login puts the user in ``role-<role>`` and ``institution-<code>`` (``hub.authenticator``).
Nobody is a JupyterHub admin. The built-in ``user`` role is emptied, so an account with a
pending step (its only group is ``enclave-pending``) has no scope at all:

- ``enclave-member`` (researchers, authors, reviewers, admins): their own server, their own
  tokens, their own name (``self``), and the release review page (``release`` service);
- ``enclave-admin`` (admins): the admin page, the list of users and servers, starting and
  stopping servers; no ``access:servers`` and no ``tokens`` on other users' servers: an
  administrator cannot open a researcher's notebooks or kernels.

Services: the idle culler (``jupyterhub-idle-culler``) and the ``enclave`` command's own
service (``enclave-cli``: stops a disabled user's server, deletes their tokens).
"""

from __future__ import annotations

RELEASE_SERVICE = "release"  # the release review page (hub.release.service)
ROLE_GROUPS = {role: f"role-{role}" for role in ("researcher", "author", "reviewer", "admin")}
ADMIN_SCOPES = [
    "admin-ui",
    "list:users",
    "read:users",
    "read:servers",
    "servers",
    "list:groups",
    "read:groups",
    "read:hub",
]
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
CLI_SCOPES = ["admin:users", "admin:servers", "tokens", "list:users", "read:users"]


def load_roles() -> list[dict]:
    return [
        {"name": "user", "description": "Nothing by itself: scopes come from enclave-member", "scopes": []},
        {
            "name": "enclave-member",
            "description": "An Enclave account: its own server and tokens",
            "scopes": ["self", f"access:services!service={RELEASE_SERVICE}"],
            "groups": list(ROLE_GROUPS.values()),
        },
        {
            "name": "enclave-admin",
            "description": "Consortium staff: the admin page, users and servers, never others' servers' contents",
            "scopes": ADMIN_SCOPES,
            "groups": [ROLE_GROUPS["admin"]],
        },
        {"name": "enclave-idle-culler", "scopes": CULLER_SCOPES, "services": ["idle-culler"]},
        {"name": "enclave-cli", "scopes": CLI_SCOPES, "services": ["enclave-cli"]},
    ]
