# JupyterHub configuration for Enclave. `make up` runs the hub with this file.
#
# Ports (all on 127.0.0.1): ENCLAVE_PORT (public, default 8000), ENCLAVE_HUB_PORT (hub API,
# default 8081), ENCLAVE_PROXY_API_PORT (proxy API, default 8001), ENCLAVE_RELEASE_PORT (the
# release review service, default 8002). State: var/ (ENCLAVE_VAR).
# ENCLAVE_PUBLIC_URL: the https:// address of the TLS-terminating proxy in front, if any.
# ENCLAVE_HUB_DB_URL: the hub's own state (default SQLite in var/hub; PostgreSQL to scale out).
import os
import sys

# Everything the hub writes (its database, its log, cookies' secrets) is private from the start.
os.umask(0o077)

from hub import isolation, provisioning  # noqa: E402
from hub.accounts import AccountStore  # noqa: E402
from hub.admin_actions import log_request  # noqa: E402
from hub.release.service import service_entry  # noqa: E402
from hub.roles import load_roles  # noqa: E402
from hub.web import security_headers  # noqa: E402
from warehouse.settings import REPO, read_or_create_secret, state_path, var_dir  # noqa: E402

c = get_config()  # noqa: F821
# Governance (hub.governance): a policy.toml edited by hand, not through an approved proposal,
# refuses the start.
from hub.governance import default_governance  # noqa: E402

policy = default_governance().check_governed("hub")
rules = policy.accounts

port = int(os.environ.get("ENCLAVE_PORT", "8000"))
hub_port = int(os.environ.get("ENCLAVE_HUB_PORT", "8081"))
proxy_api_port = int(os.environ.get("ENCLAVE_PROXY_API_PORT", "8001"))
release_port = int(os.environ.get("ENCLAVE_RELEASE_PORT", "8002"))
public_url = os.environ.get("ENCLAVE_PUBLIC_URL", "")
behind_tls = public_url.startswith("https://")

c.JupyterHub.bind_url = f"http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [str(REPO / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(state_path("hub", "proxy.pid"))
c.ConfigurableHTTPProxy.auth_token = read_or_create_secret("proxy-token").decode()

# Fail closed (hub.isolation): the mode is decided once, here, and var/ is secured before the
# first spawn.
decided = isolation.decide()
var = var_dir()
log_file = state_path("logs", "hub.log")
for private in (state_path("hub", "jupyterhub.sqlite"), log_file):
    if private.exists():
        private.chmod(0o600)
if not log_file.exists():
    os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT, 0o600))
if decided.switches_user:
    provisioning.sync(var, [a.name for a in AccountStore().list() if a.active], shared=decided.shared)
elif os.geteuid() == 0 or not decided.refused:
    provisioning.secure_state(var)
c.EnclaveSpawner.isolation_mode = decided.mode
c.EnclaveSpawner.isolation_reason = decided.reason
c.EnclaveSpawner.isolation_shared = decided.shared
print(f"Enclave isolation: {decided.mode}: {decided.reason}", file=sys.stderr, flush=True)
if decided.refused:
    c.JupyterHub.template_vars = {"announcement": decided.reason}

c.JupyterHub.db_url = os.environ.get("ENCLAVE_HUB_DB_URL") or f"sqlite:///{state_path('hub', 'jupyterhub.sqlite')}"
c.JupyterHub.cookie_secret = bytes.fromhex(read_or_create_secret("cookie-secret").decode())
c.JupyterHub.pid_file = str(state_path("hub", "jupyterhub.pid"))

c.JupyterHub.authenticator_class = "hub.authenticator.EnclaveAuthenticator"
sso = os.environ.get("ENCLAVE_SSO")  # institutional OpenID Connect instead of passwords (hub.sso)
if sso:
    from hub.sso import load_sso_config

    c.JupyterHub.authenticator_class = "hub.sso.EnclaveSSOAuthenticator"
    for key, value in load_sso_config(sso).items():
        setattr(c.EnclaveSSOAuthenticator, key, value)
    base = public_url.rstrip("/") if public_url else f"http://127.0.0.1:{port}"
    c.EnclaveSSOAuthenticator.oauth_callback_url = f"{base}/hub/oauth_callback"
c.Authenticator.auth_refresh_age = 60  # a disabled account's browser session ends within a minute
c.Authenticator.refresh_pre_spawn = True
c.JupyterHub.spawner_class = "hub.spawner.EnclaveSpawner"
if not decided.refused:
    from hub.spawner import warm_forkserver

    warm_forkserver()  # the zygote imports Jupyter while the hub starts (hub.forkserver)
c.Spawner.ip = "127.0.0.1"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.JupyterHub.shutdown_on_logout = True
c.JupyterHub.template_paths = [str(REPO / "hub" / "templates")]
c.JupyterHub.load_roles = load_roles()


def default_url(handler):
    """After login: the pending step's page if there is one, else the user's server."""
    user = handler.current_user
    pending = user is not None and handler.authenticator.pending(user.name)
    step = handler.authenticator.store.pending_step(user.name) if pending else None
    if step:
        return handler.hub.base_url + ("totp" if "/hub/totp" in step else "change-password")
    return handler.hub.base_url + "spawn"


c.JupyterHub.default_url = default_url

# Sessions and tokens from the policy.
c.JupyterHub.cookie_max_age_days = rules.session_hours / 24
c.JupyterHub.token_expires_in_max_seconds = rules.token_max_age_days * 24 * 3600
# The browser forgets the login cookie when the hub stops accepting it (JupyterHub checks the
# age of the cookie it reads; without expires_days the browser would keep it for 30 days).
cookie_options = {
    "samesite": "Lax",
    "expires_days": rules.session_hours / 24,
    **({"secure": True} if behind_tls else {}),
}
# Every request passes the admin-action log (hub.admin_actions): acting on another user's server,
# tokens or account is recorded in the audit log.
c.JupyterHub.tornado_settings = {"cookie_options": cookie_options, "log_function": log_request}
if behind_tls:
    c.JupyterHub.tornado_settings["headers"] = security_headers()

# Services: the idle culler, and the `enclave` command's own token (disable: stop, revoke).
cull_every = max(30, min(300, rules.idle_timeout_minutes * 30))
c.JupyterHub.services = [
    {
        "name": "idle-culler",
        "command": [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={rules.idle_timeout_minutes * 60}",
            f"--cull-every={cull_every}",
        ],
    },
    {"name": "enclave-cli", "api_token": read_or_create_secret("cli-token").decode()},
    # The release review page (hub.release.service) at /services/release/, logged in by the hub.
    {
        **service_entry(
            f"http://127.0.0.1:{release_port}",
            {k: v for k, v in os.environ.items() if k.startswith("ENCLAVE_")},
            python=sys.executable,
        ),
        "cwd": str(REPO),
    },
]

c.JupyterHub.logging_config = {
    "handlers": {
        "file": {
            "class": "logging.FileHandler",
            "filename": str(log_file),
            "formatter": "file",
        }
    },
    "formatters": {"file": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "loggers": {"JupyterHub": {"handlers": ["console", "file"], "level": "INFO"}},
}
