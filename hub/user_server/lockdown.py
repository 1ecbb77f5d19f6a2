"""A server extension closing the routes that hand out files, and adding security headers.

``/nbconvert/...`` (export, ``?download=true``) and ``/view/...`` are answered 404 before the
server's own handlers see them (extension handlers come first in tornado's routing);
``/api/nbconvert`` lists no exporters, so JupyterLab offers none. Behind TLS
(``ENCLAVE_PUBLIC_URL`` starts with ``https://``) every response carries the security headers
of ``hub.web.security_headers``.
"""

from __future__ import annotations

import json
import os

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.services.sessions.handlers import SessionRootHandler
from jupyter_server.utils import url_path_join
from tornado import web

CLOSED = (r"/nbconvert/.*", r"/view/.*", r"/files/.*")


class Closed(JupyterHandler):
    """Every method: 404, with a sentence saying why."""

    def _closed(self, *args, **kwargs) -> None:
        raise web.HTTPError(404, "file downloads and exports are closed in the research environment")

    get = post = put = delete = patch = head = _closed


class NoExporters(JupyterHandler):
    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish("{}")


class CheckedSessions(SessionRootHandler):
    """New sessions: a kernel name that may not be started is a 404 (the stock handler says 500)."""

    async def post(self) -> None:
        try:
            model = json.loads(self.request.body or b"{}")
        except ValueError:
            model = {}
        name = (model.get("kernel") or {}).get("name") if isinstance(model, dict) else None
        if name:
            self.kernel_manager.kernel_spec_manager.get_kernel_spec(name)  # RefusedKernel: 404
        await super().post()


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "hub.user_server.lockdown"}]


def _load_jupyter_server_extension(serverapp) -> None:
    base = serverapp.web_app.settings["base_url"]
    handlers = [(url_path_join(base, pattern), Closed) for pattern in CLOSED]
    handlers.append((url_path_join(base, r"/api/nbconvert/?"), NoExporters))
    handlers.append((url_path_join(base, r"/api/sessions/?"), CheckedSessions))
    serverapp.web_app.add_handlers(".*$", handlers)
    if os.environ.get("ENCLAVE_PUBLIC_URL", "").startswith("https://"):
        from hub.web import security_headers

        headers = serverapp.web_app.settings.setdefault("headers", {})
        headers.update(security_headers())
    serverapp.log.info("Enclave lockdown: downloads, exports and /view closed")
