"""JupyterHub login against Enclave's account store (argon2 password hashes)."""

from __future__ import annotations

import asyncio

from jupyterhub.auth import Authenticator
from traitlets import Unicode, default

from hub.accounts import AccountStore, accounts_url
from output_filters.policy import load_policy


class EnclaveAuthenticator(Authenticator):
    """Accepts the name and password of an active Enclave account.

    Administrators (role ``admin``) become JupyterHub admins. Accounts are created with
    ``enclave user add``; the hub never creates them.
    """

    accounts_url = Unicode(
        config=True,
        help="SQLAlchemy URL of the account store (default: ENCLAVE_ACCOUNTS_URL or var/accounts.db).",
    )

    @default("any_allow_config")
    def _default_any_allow_config(self) -> bool:
        return True  # check_allowed consults the account store: only active accounts get in

    @default("accounts_url")
    def _default_accounts_url(self) -> str:
        return accounts_url()

    @property
    def store(self) -> AccountStore:
        if not hasattr(self, "_store"):
            from sqlalchemy import create_engine

            self._store = AccountStore(create_engine(self.accounts_url), load_policy().accounts)
        return self._store

    async def authenticate(self, handler, data):
        name = self.normalize_username((data or {}).get("username", ""))
        password = (data or {}).get("password", "")
        if not name or not password:
            return None
        account = await asyncio.to_thread(self.store.verify, name, password)
        if account is None:
            self.log.warning("Failed login for %s", name)
            return None
        return {
            "name": account.name,
            "admin": account.role == "admin",
            "auth_state": {"role": account.role, "institution": account.institution},
        }

    def check_allowed(self, username, authentication=None) -> bool:
        account = self.store.get(username)
        return account is not None and account.active
