"""The hub's own pages and session rules: logout that ends the session, password change,
second-factor enrollment, security headers behind TLS.

JupyterHub's logout clears the browser's cookie but keeps the user's cookie id, so a copy of
the old hub cookie still works, and the user servers' OAuth tokens stay valid. Logout here
also gives the user a new cookie id and deletes every token issued through OAuth (the
servers' and services' logins); API tokens the user made on the token page stay until they
expire (at most ``token_max_age_days``).

The pages are registered by ``EnclaveAuthenticator.get_handlers``; they need a login but no
scope, so an account with a pending step (``AccountStore.pending_step``) can reach them while
it can reach nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
from urllib.parse import quote

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.handlers.login import LogoutHandler
from jupyterhub.orm import APIToken
from jupyterhub.utils import new_token
from tornado import web

from hub.exceptions import AccountError
from hub.kernel_events import MAX_EVENTS, audit_entry

PENDING_GROUP = "enclave-pending"
TOTP_COOKIE = "enclave-totp-enrollment"
ISSUER = "Enclave"


def security_headers() -> dict[str, str]:
    """Headers every response carries when the hub is served behind TLS."""
    return {
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self' wss: ws:; "
            "font-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'self'"
        ),
    }


def end_session(db, user) -> int:
    """Rotate the user's cookie id and delete their OAuth tokens; the number deleted."""
    orm_user = user.orm_user if hasattr(user, "orm_user") else user
    orm_user.cookie_id = new_token()
    revoked = 0
    for token in list(orm_user.api_tokens):
        if token.client_id and token.client_id != "jupyterhub":
            db.delete(token)
            revoked += 1
    db.commit()
    return revoked


def revoke_all_tokens(db, user) -> int:
    """Every token of the user, API tokens too (a disabled account)."""
    orm_user = user.orm_user if hasattr(user, "orm_user") else user
    tokens = db.query(APIToken).filter(APIToken.user_id == orm_user.id).all()
    for token in tokens:
        db.delete(token)
    orm_user.cookie_id = new_token()
    db.commit()
    return len(tokens)


class EnclaveLogoutHandler(LogoutHandler):
    async def handle_logout(self) -> None:
        user = self.current_user
        if user is None:
            return
        revoked = end_session(self.db, user)
        self.authenticator.audit("logout", user.name, source=self.request.remote_ip, oauth_tokens_revoked=revoked)


class _AccountPage(BaseHandler):
    """A page of the logged-in user's own account."""

    @property
    def store(self):
        return self.authenticator.store

    async def _page(self, template: str, **ns) -> None:
        user = self.current_user
        ns.setdefault("pending", self.store.pending_step(user.name))
        self.finish(await self.render_template(template, user=user, rules=self.store.rules, **ns))

    async def _done(self, user) -> None:
        """After a step: the user's groups follow the account, then the next step or home."""
        self.authenticator.sync_user_groups(user)
        pending = self.store.pending_step(user.name)
        if pending and "/hub/totp" in pending:
            self.redirect(self.hub.base_url + "totp")
        else:
            self.redirect(self.get_next_url(user))


class ChangePasswordHandler(_AccountPage):
    @web.authenticated
    async def get(self) -> None:
        await self._page("change_password.html", message="", error="")

    @web.authenticated
    async def post(self) -> None:
        user = self.current_user
        current = self.get_body_argument("current_password", "")
        new = self.get_body_argument("new_password", "")
        repeated = self.get_body_argument("new_password_again", "")
        error = ""
        if not self.store.check_current_password(user.name, current):
            error = "The current password is not right."
        elif not hmac.compare_digest(new.encode(), repeated.encode()):
            error = "The two new passwords differ."
        else:
            try:
                self.store.change_password(user.name, new)
            except AccountError as refused:
                error = str(refused).capitalize() + "."
        if error:
            self.set_status(400)
            await self._page("change_password.html", message="", error=error)
            return
        self.authenticator.audit("password.change", user.name, source=self.request.remote_ip)
        await self._done(user)


class TotpHandler(_AccountPage):
    """Enrollment of a TOTP authenticator app: a QR code, then one code to confirm."""

    def _enrollment_secret(self) -> str:
        import pyotp

        secret = self.get_secure_cookie(TOTP_COOKIE, max_age_days=1 / 48)
        if secret:
            return secret.decode()
        secret = pyotp.random_base32()
        self.set_secure_cookie(TOTP_COOKIE, secret, expires_days=1 / 48, httponly=True, path=self.hub.base_url)
        return secret

    def _qr(self, name: str, secret: str) -> tuple[str, str]:
        import pyotp
        import qrcode
        import qrcode.image.svg

        uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)
        image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage)
        return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode(), uri

    async def _show(self, error: str = "") -> None:
        user = self.current_user
        enrolled = self.store.status(user.name).totp
        if enrolled:
            await self._page("totp.html", enrolled=True, error=error, qr="", secret="", uri="")
            return
        secret = self._enrollment_secret()
        qr, uri = self._qr(user.name, secret)
        await self._page("totp.html", enrolled=False, error=error, qr=qr, secret=secret, uri=quote(uri))

    @web.authenticated
    async def get(self) -> None:
        await self._show()

    @web.authenticated
    async def post(self) -> None:
        user = self.current_user
        if self.store.status(user.name).totp:
            await self._show("A second factor is already set up; an administrator can reset it.")
            return
        secret = self._enrollment_secret()
        code = self.get_body_argument("code", "")
        if not self.store.enroll_totp(user.name, secret, code):
            self.set_status(400)
            await self._show("That code is not right; type the 6 digits your app shows now.")
            return
        self.clear_cookie(TOTP_COOKIE, path=self.hub.base_url)
        self.authenticator.audit("totp.enroll", user.name, source=self.request.remote_ip)
        await self._done(user)


class KernelEventsHandler(APIHandler):
    """Filter events of a user's kernels, posted by their Jupyter server with its hub token.

    The event is recorded under the token's owner, whatever the body says: a server can only
    speak for its own user. The kernel never writes the audit database.
    """

    async def post(self) -> None:
        user = self.current_user
        if user is None or getattr(user, "kind", "user") != "user":
            raise web.HTTPError(403, "only a user's server reports kernel events")
        try:
            body = json.loads(self.request.body or b"{}")
            posted = body["events"]
            assert isinstance(posted, list)
        except (ValueError, KeyError, AssertionError):
            raise web.HTTPError(400, 'expected JSON {"events": [{"event": ..., "details": {...}}]}') from None
        recorded = 0
        for item in posted[:MAX_EVENTS]:
            entry = audit_entry(item)
            if entry is None:
                continue
            event, details = entry
            await asyncio.to_thread(self.authenticator.audit, event, user.name, **details)
            recorded += 1
        self.finish({"recorded": recorded})


def handlers() -> list[tuple[str, type]]:
    return [
        ("/enclave/kernel-events", KernelEventsHandler),
        ("/logout", EnclaveLogoutHandler),
        ("/change-password", ChangePasswordHandler),
        ("/totp", TotpHandler),
    ]
