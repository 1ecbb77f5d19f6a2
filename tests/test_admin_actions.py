"""Which hub requests are admin actions on another user (``hub.admin_actions.admin_action``).

One row per request: the method, the path the hub answered, who sent it, and the audit event
with the user acted on (None: not an admin action, nothing recorded). The live hub's test
(tests/e2e/test_release_review.py) shows one of them reaching the audit log end to end.
"""

from __future__ import annotations

import pytest

from hub.admin_actions import admin_action

CASES = [
    # id, method, uri, actor, expected
    ("start-other", "POST", "/hub/api/users/rita/server", "ada", ("hub.admin.server.start", "rita")),
    ("stop-other", "DELETE", "/hub/api/users/rita/server", "ada", ("hub.admin.server.stop", "rita")),
    ("start-own", "POST", "/hub/api/users/ada/server", "ada", None),
    ("spawn-page-other", "POST", "/hub/spawn/rita", "ada", ("hub.admin.server.start", "rita")),
    ("open-other", "GET", "/hub/user/rita/lab", "ada", ("hub.admin.server.open", "rita")),
    ("open-own", "GET", "/hub/user/ada/lab", "ada", None),
    (
        "oauth-to-other-server",
        "GET",
        "/hub/api/oauth2/authorize?client_id=jupyterhub-user-rita&response_type=code",
        "ada",
        ("hub.admin.server.open", "rita"),
    ),
    ("oauth-to-own-server", "GET", "/hub/api/oauth2/authorize?client_id=jupyterhub-user-ada", "ada", None),
    ("oauth-to-a-service", "GET", "/hub/api/oauth2/authorize?client_id=service-release", "ada", None),
    ("token-for-other", "POST", "/hub/api/users/rita/tokens", "ada", ("hub.admin.token.issue", "rita")),
    ("token-revoke-other", "DELETE", "/hub/api/users/rita/tokens/a1b2", "ada", ("hub.admin.token.revoke", "rita")),
    ("token-for-self", "POST", "/hub/api/users/ada/tokens", "ada", None),
    (
        "service-token-for-user",
        "POST",
        "/hub/api/users/rita/tokens",
        "service:release",
        ("hub.admin.token.issue", "rita"),
    ),
    ("change-other", "PATCH", "/hub/api/users/rita", "ada", ("hub.admin.user.change", "rita")),
    ("delete-other", "DELETE", "/hub/api/users/rita", "ada", ("hub.admin.user.delete", "rita")),
    ("read-other", "GET", "/hub/api/users/rita", "ada", None),
    ("list-tokens-other", "GET", "/hub/api/users/rita/tokens", "ada", None),
]


@pytest.mark.parametrize(("method", "uri", "actor", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_admin_actions(method, uri, actor, expected):
    assert admin_action(method, uri, actor) == expected
