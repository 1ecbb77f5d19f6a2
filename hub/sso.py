"""Institutional single sign-on: OpenID Connect through oauthenticator's GenericOAuthenticator.

``EnclaveSSOAuthenticator`` is a small subclass: the institution's provider says who the
person is; Enclave decides whether they get in. The identity (``username_claim``, by default
``preferred_username``) must be the name of a provisioned, active Enclave account of one of
the institutions this provider vouches for (``institutions``). Nothing is created at login:
no self-registration. Roles and groups come from the account, as for password logins; the
provider's own password rules and second factor apply instead of Enclave's, so the
password-age and TOTP steps are not asked of SSO logins. Logout ends the session as for
password logins (``hub.web``).

A deployment turns it on with ``ENCLAVE_SSO=path/to/sso.toml`` (``load_sso_config``).
One provider per hub: a consortium-wide federation or one institution's provider.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from oauthenticator.generic import GenericOAuthenticator
from traitlets import List, Unicode, default

from hub.authenticator import EnclaveAccounts, groups_for, safe
from hub.exceptions import HubError
from hub.web import handlers

REQUIRED = ("authorize_url", "token_url", "userdata_url", "client_id", "institutions")
OPTIONAL = ("client_secret", "client_secret_file", "username_claim", "scope", "login_service")


class SSOConfigError(HubError):
    """The SSO configuration file is missing, unreadable or incomplete."""


class EnclaveSSOAuthenticator(EnclaveAccounts, GenericOAuthenticator):
    institutions = List(
        Unicode(),
        config=True,
        help="Codes of the member institutions whose accounts this provider may log in.",
    )

    @default("username_claim")
    def _default_username_claim(self) -> str:
        return "preferred_username"

    @default("scope")
    def _default_scope(self) -> list[str]:
        return ["openid", "profile"]

    @default("login_service")
    def _default_login_service(self) -> str:
        return "your institution"

    async def update_auth_model(self, auth_model):
        """Groups from the Enclave account (kept in auth_state for get_user_groups)."""
        auth_model = await super().update_auth_model(auth_model)
        account = self.store.get(auth_model["name"])
        groups = groups_for(account, pending=False) if account is not None else []
        auth_model["admin"] = False
        auth_model["auth_state"] = {**(auth_model.get("auth_state") or {}), "enclave_groups": groups}
        return auth_model

    async def get_user_groups(self, auth_state: dict):
        return set(auth_state.get("enclave_groups", []))

    def _refusal(self, username: str) -> str | None:
        account = self.store.get(username)
        if account is None:
            return "no provisioned account of that name"
        if not account.active:
            return "account disabled"
        if account.institution not in self.institutions:
            return f"the account belongs to {account.institution or 'no institution'}, not to this provider's"
        return None

    async def check_allowed(self, username, auth_model):
        if auth_model is None:
            return True  # JupyterHub's own calls outside a login
        refusal = self._refusal(username) if self.validate_username(username) else "not a valid Enclave name"
        if refusal:
            self.log.warning("Refused SSO login for %s: %s", safe(username), refusal)
            self.audit("login.failure", username[:100], via="sso", reason=refusal)
            return False
        self.audit("login.success", username, via="sso")
        return True

    def pending(self, name: str) -> bool:
        return False  # the provider's password rules and second factor apply

    def get_handlers(self, app):
        return [*(h for h in super().get_handlers(app) if h[0] != r"/logout"), *handlers()]


def load_sso_config(path: Path) -> dict:
    """The traits of EnclaveSSOAuthenticator from a TOML file; errors name the file and key."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SSOConfigError(f"ENCLAVE_SSO names {path}, which does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise SSOConfigError(f"{path}: not valid TOML: {error}") from None
    missing = [key for key in REQUIRED if key not in document]
    unknown = sorted(set(document) - set(REQUIRED) - set(OPTIONAL))
    if missing or unknown:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unknown {', '.join(unknown)}"] if unknown else []
        raise SSOConfigError(f"{path}: {'; '.join(parts)} (keys: {', '.join(REQUIRED + OPTIONAL)})")
    traits = {key: document[key] for key in document if key != "client_secret_file"}
    if "client_secret_file" in document:
        secret = Path(document["client_secret_file"])
        if not secret.exists():
            raise SSOConfigError(f"{path}: client_secret_file {secret} does not exist")
        traits["client_secret"] = secret.read_text().strip()
    if not isinstance(traits["institutions"], list) or not traits["institutions"]:
        raise SSOConfigError(f'{path}: institutions must list institution codes, e.g. ["ABC234"]')
    return traits
