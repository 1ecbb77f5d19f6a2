"""A browser-like client of the hub for end-to-end tests: login form, spawn, kernels.

Talks only HTTP and websockets to the public URL, as a browser would: the hub's login form
with its XSRF token, the OAuth redirect into the user server, the Jupyter REST API with the
XSRF header, and the kernel websocket.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field

import requests
import websocket


@dataclass
class Execution:
    outputs: list[dict] = field(default_factory=list)
    reply: dict | None = None
    messages: list[dict] = field(default_factory=list)  # every message of the cell, any type

    @property
    def text(self) -> str:
        parts = []
        for message in self.outputs:
            content = message["content"]
            if "text" in content:
                parts.append(content["text"])
            for value in content.get("data", {}).values():
                parts.append(str(value))
            if "evalue" in content:
                parts.append(f"{content['ename']}: {content['evalue']}")
        return "\n".join(parts)


class HubClient:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.session = requests.Session()

    def login(self, name: str, password: str, otp: str = "") -> requests.Response:
        page = self.session.get(f"{self.url}/hub/login", timeout=30)
        token = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
        return self.session.post(
            f"{self.url}/hub/login?next=",
            data={"username": name, "password": password, "otp": otp, "_xsrf": token},
            allow_redirects=False,
            timeout=30,
        )

    def hub_xsrf(self) -> str:
        for cookie in self.session.cookies:
            if cookie.name == "_xsrf" and cookie.path.startswith("/hub"):
                return cookie.value
        return ""

    def hub_api(self, method: str, path: str, **kwargs) -> requests.Response:
        """The hub's REST API with this session's cookie (and XSRF header), or a token given in headers."""
        headers = {"X-XSRFToken": self.hub_xsrf(), **kwargs.pop("headers", {})}
        return self.session.request(method, f"{self.url}/hub/api/{path}", headers=headers, timeout=60, **kwargs)

    def form(self, path: str, fields: dict[str, str]) -> requests.Response:
        """Submit a hub form (change-password, totp) with the page's XSRF token."""
        page = self.session.get(f"{self.url}/hub/{path}", timeout=30)
        token = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
        return self.session.post(
            f"{self.url}/hub/{path}", data={**fields, "_xsrf": token}, allow_redirects=False, timeout=30
        )

    def logout(self) -> requests.Response:
        return self.session.get(f"{self.url}/hub/logout", allow_redirects=False, timeout=60)

    def open_lab(self, name: str, timeout: float = 120) -> requests.Response:
        """Start the user's server if needed and load JupyterLab (finishing the OAuth dance)."""
        deadline = time.monotonic() + timeout
        self.session.get(f"{self.url}/hub/spawn/{name}", timeout=60)
        while True:
            response = self.session.get(f"{self.url}/user/{name}/lab", timeout=60)
            if response.status_code == 200 and response.url.startswith(f"{self.url}/user/{name}/lab"):
                return response
            if time.monotonic() > deadline:
                raise TimeoutError(f"JupyterLab for {name} did not open: {response.status_code} {response.url}")
            time.sleep(0.2)

    def _xsrf(self, name: str) -> str:
        for cookie in self.session.cookies:
            if cookie.name == "_xsrf" and cookie.path.startswith(f"/user/{name}"):
                return cookie.value
        return self.session.cookies.get("_xsrf", "")

    def api(self, name: str, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"X-XSRFToken": self._xsrf(name)}
        return self.session.request(method, f"{self.url}/user/{name}/api/{path}", headers=headers, timeout=60, **kwargs)

    def start_kernel(self, name: str, kernel: str | None = None) -> requests.Response:
        return self.api(name, "POST", "kernels", json={"name": kernel} if kernel else {})

    def execute(self, name: str, kernel_id: str, code: str, timeout: float = 120) -> Execution:
        """Run ``code``; wait for both the execute_reply and the idle status (any order)."""
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)
        ws_url = self.url.replace("http", "ws", 1) + f"/user/{name}/api/kernels/{kernel_id}/channels"
        socket = websocket.create_connection(
            ws_url, cookie=cookies, header={"X-XSRFToken": self._xsrf(name)}, timeout=timeout
        )
        msg_id = uuid.uuid4().hex
        socket.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": name,
                        "session": uuid.uuid4().hex,
                        "msg_type": "execute_request",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "buffers": [],
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                    },
                }
            )
        )
        result, idle = Execution(), False
        deadline = time.monotonic() + timeout
        try:
            while result.reply is None or not idle:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no reply to {code!r} within {timeout}s")
                message = json.loads(socket.recv())
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = message["header"]["msg_type"]
                result.messages.append(message)
                if kind == "execute_reply":
                    result.reply = message["content"]
                elif kind == "status" and message["content"]["execution_state"] == "idle":
                    idle = True
                elif kind in ("stream", "execute_result", "display_data", "error"):
                    result.outputs.append(message)
        finally:
            socket.close()
        return result
