"""A fake OpenID Connect provider for tests, in the test process, on 127.0.0.1.

``FakeProvider.start()`` serves ``/authorize`` (the person "logged in" at the provider is
``provider.person``; it redirects back with a one-time code), ``/token`` (checks the client
secret and the code, gives an access token) and ``/userinfo`` (the claims for that token).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse


class FakeProvider:
    def __init__(self, client_id: str = "enclave-hub", client_secret: str | None = None):
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_hex(16)
        self.person: str | None = None
        self.codes: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def config(self, institutions: list[str]) -> str:
        """An sso.toml for the hub."""
        return "\n".join(
            [
                f'authorize_url = "{self.url}/authorize"',
                f'token_url = "{self.url}/token"',
                f'userdata_url = "{self.url}/userinfo"',
                f'client_id = "{self.client_id}"',
                f'client_secret = "{self.client_secret}"',
                'login_service = "Fake University"',
                f"institutions = {json.dumps(institutions)}",
                "",
            ]
        )

    def start(self) -> FakeProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                return

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/authorize":
                    if query.get("client_id") != provider.client_id or provider.person is None:
                        self._json(400, {"error": "invalid_request"})
                        return
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = provider.person
                    back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
                    self.send_response(302)
                    self.send_header("Location", back)
                    self.end_headers()
                elif url.path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                    person = provider.tokens.get(token)
                    if person is None:
                        self._json(401, {"error": "invalid_token"})
                        return
                    self._json(200, {"sub": f"sub-{person}", "preferred_username": person})
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                basic = self.headers.get("Authorization", "")
                if basic.startswith("Basic "):
                    client, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
                else:
                    client, secret = form.get("client_id", ""), form.get("client_secret", "")
                if self.path != "/token" or (client, secret) != (provider.client_id, provider.client_secret):
                    self._json(401, {"error": "invalid_client"})
                    return
                person = provider.codes.pop(form.get("code", ""), None)
                if person is None:
                    self._json(400, {"error": "invalid_grant"})
                    return
                token = secrets.token_urlsafe(24)
                provider.tokens[token] = person
                self._json(
                    200, {"access_token": token, "token_type": "Bearer", "expires_in": 300, "scope": "openid profile"}
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
