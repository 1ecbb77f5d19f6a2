"""The reviewers' web page: a JupyterHub service at /services/release/ (hub OAuth).

Reviewers see the requests waiting for their institution with the re-check's findings and,
file by file, what was requested beside what would leave (neutral labels), and decide there;
requesters follow their requests and download released files (checked against their
checksums). Every page calls ``hub.release.desk``, as the CLI does: the same permissions, the
same moves, the same audit events (``via`` "web").

The hub starts it (``jupyterhub_config.py``, and in Zero to JupyterHub ``deploy/z2jh-values.yaml``,
both from ``service_entry``) on ``ENCLAVE_RELEASE_PORT`` (default 8002) on 127.0.0.1; users reach
it through the proxy, logged in by the hub. In the chart the proxy runs in a pod of its own, so
the service listens on the hub pod's address (``ENCLAVE_RELEASE_BIND``), reachable from the proxy
pod only (the hub's network policy).
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import os
import signal
from pathlib import Path
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web

from hub.accounts import AccountStore
from hub.exceptions import HubError
from hub.release.desk import ReleaseDesk, Request, default_desk
from hub.release.states import OWNERS, Status
from warehouse.settings import read_or_create_secret

TEMPLATES = Path(__file__).with_name("templates")
LIMIT = 2_000_000  # bytes of a file shown inline; larger ones are only listed


class Page(HubOAuthenticated, web.RequestHandler):
    """A page for a logged-in hub user; the account's role comes from the account store."""

    def desk(self) -> ReleaseDesk:
        return self.settings["desk_factory"]()

    @property
    def name(self) -> str:
        return self.current_user["name"]

    def account(self):
        account = AccountStore().get(self.name)
        if account is None or not account.active:
            raise web.HTTPError(403, "no active Enclave account")
        return account

    def may_see(self, request: Request) -> bool:
        account = self.account()
        if account.role in ("reviewer", "admin") or request.requester == self.name:
            return True
        return False

    def write_error(self, status_code: int, **kwargs) -> None:
        reason = self._reason
        error = kwargs.get("exc_info", (None, None))[1]
        if isinstance(error, web.HTTPError) and error.log_message:
            reason = error.log_message
        self.finish(self.render_string("error.html", status=status_code, reason=reason, prefix=self.settings["prefix"]))


class IndexPage(Page):
    @web.authenticated
    def get(self) -> None:
        account = self.account()
        desk = self.desk()
        requests = [r for r in desk.list() if self.may_see(r)]
        waiting = [r for r in requests if desk.can_decide(r, self.name)]
        self.render(
            "index.html",
            prefix=self.settings["prefix"],
            account=account,
            waiting=waiting,
            requests=requests,
            owners=OWNERS,
        )


class RequestPage(Page):
    def _request(self, request_id: str) -> tuple[ReleaseDesk, Request]:
        desk = self.desk()
        try:
            request = desk.get(int(request_id))
        except HubError as error:
            raise web.HTTPError(404, str(error)) from None
        if not self.may_see(request):
            raise web.HTTPError(403, f"request {request.id} is not yours, and you are not a reviewer")
        return desk, request

    @web.authenticated
    def get(self, request_id: str) -> None:
        desk, request = self._request(request_id)
        views = []
        for item in request.files:
            original = _read(desk.directory(request, "original") / item.name)
            outgoing = _read(desk.directory(request, "outgoing") / item.name) if item.outgoing_sha256 else None
            views.append((item, _view(item.name, original), _view(item.name, outgoing)))
        self.render(
            "request.html",
            prefix=self.settings["prefix"],
            request=request,
            views=views,
            history=desk.history(request.id),
            can_decide=desk.can_decide(request, self.name),
            is_requester=request.requester == self.name,
            released=request.status == Status.RELEASED,
            message=self.get_argument("message", ""),
        )


class DecisionPage(RequestPage):
    @web.authenticated
    def post(self, request_id: str) -> None:
        desk, request = self._request(request_id)
        decision = self.get_body_argument("decision", "")
        if decision not in ("approve", "reject"):
            raise web.HTTPError(400, "choose approve or reject")
        comment = self.get_body_argument("comment", "")
        try:
            request = desk.decide(request.id, self.name, decision == "approve", comment)
        except HubError as error:
            self.set_status(400)
            self.finish(self.render_string("error.html", status=400, reason=str(error), prefix=self.settings["prefix"]))
            return
        message = f"Your decision is recorded. The request is now {request.status.value}."
        self.redirect(f"{self.settings['prefix']}requests/{request.id}?{_query(message=message)}")


class DownloadPage(RequestPage):
    @web.authenticated
    def get(self, request_id: str, name: str) -> None:
        desk, request = self._request(request_id)
        try:
            data = desk.released_file(request.id, name, self.name)
        except HubError as error:
            raise web.HTTPError(403, str(error)) from None
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(data)


def _query(**values: str) -> str:
    from urllib.parse import urlencode

    return urlencode(values)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.stat().st_size <= LIMIT else None
    except OSError:
        return None


def _view(name: str, data: bytes | None) -> dict:
    """How a file is shown: a table (CSV), a sandboxed frame (HTML), text, a notebook's outputs, an image."""
    if data is None:
        return {"kind": "missing"}
    suffix = Path(name).suffix.lower()
    if suffix == ".png":
        return {"kind": "image", "src": "data:image/png;base64," + base64.b64encode(data).decode()}
    text = data.decode("utf-8", errors="replace")
    if suffix == ".csv":
        return {"kind": "table", "rows": list(csv.reader(io.StringIO(text)))}
    if suffix == ".html":
        return {"kind": "html", "html": text}
    if suffix == ".txt":
        return {"kind": "text", "text": text}
    try:
        cells = json.loads(text).get("cells", [])
    except ValueError:
        return {"kind": "text", "text": text}
    outputs = []
    for number, cell in enumerate(cells, start=1):
        for output in cell.get("outputs", []) or []:
            data_ = output.get("data") or {}
            if "image/png" in data_:
                outputs.append((number, "image", "data:image/png;base64," + "".join(data_["image/png"]).strip()))
            elif "text/html" in data_:
                outputs.append((number, "html", "".join(data_["text/html"])))
            elif "text/plain" in data_:
                outputs.append((number, "text", "".join(data_["text/plain"])))
            elif output.get("output_type") == "stream":
                outputs.append((number, "text", "".join(output.get("text", ""))))
            elif output.get("output_type") == "error":
                outputs.append((number, "text", f"{output.get('ename')}: {output.get('evalue')}"))
    return {"kind": "notebook", "outputs": outputs}


def make_app(prefix: str, desk_factory=None) -> web.Application:
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    return web.Application(
        [
            (prefix, IndexPage),
            (prefix + r"requests/(\d+)", RequestPage),
            (prefix + r"requests/(\d+)/decision", DecisionPage),
            (prefix + r"requests/(\d+)/files/([^/]+)", DownloadPage),
            (prefix + "oauth_callback", HubOAuthCallbackHandler),
        ],
        template_path=str(TEMPLATES),
        cookie_secret=read_or_create_secret("release-cookie-secret"),
        xsrf_cookies=True,
        prefix=prefix,
        desk_factory=desk_factory or (lambda: default_desk(via="web")),
    )


NAME = "release"
COMMAND = ["python3", "-m", "hub.release.service"]


def service_entry(url: str, environment: dict[str, str], python: str = "python3") -> dict:
    """The hub's service entry for the review page (``JupyterHub.services``): the local hub's and
    the chart's. Access to it is the ``enclave-member`` role's (``hub.roles``)."""
    return {
        "name": NAME,
        "url": url,
        "command": [python, *COMMAND[1:]],
        "oauth_no_confirm": True,  # the hub's own page: no "authorize this service?" step
        "display": True,
        "environment": environment,
    }


async def main() -> None:
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    app = make_app(os.environ["JUPYTERHUB_SERVICE_PREFIX"])
    app.listen(url.port, address=os.environ.get("ENCLAVE_RELEASE_BIND", "127.0.0.1"), xheaders=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
