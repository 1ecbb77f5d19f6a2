# JupyterHub configuration for Enclave. `make up` runs the hub with this file.
#
# Ports (all on 127.0.0.1): ENCLAVE_PORT (public, default 8000), ENCLAVE_HUB_PORT (hub API,
# default 8081), ENCLAVE_PROXY_API_PORT (proxy API, default 8001). State: var/ (ENCLAVE_VAR).
import os

from warehouse.settings import REPO, read_or_create_secret, state_path

c = get_config()  # noqa: F821

port = int(os.environ.get("ENCLAVE_PORT", "8000"))
hub_port = int(os.environ.get("ENCLAVE_HUB_PORT", "8081"))
proxy_api_port = int(os.environ.get("ENCLAVE_PROXY_API_PORT", "8001"))

c.JupyterHub.bind_url = f"http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [str(REPO / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(state_path("hub", "proxy.pid"))
c.ConfigurableHTTPProxy.auth_token = read_or_create_secret("proxy-token").decode()

c.JupyterHub.db_url = f"sqlite:///{state_path('hub', 'jupyterhub.sqlite')}"
c.JupyterHub.cookie_secret = bytes.fromhex(read_or_create_secret("cookie-secret").decode())
c.JupyterHub.pid_file = str(state_path("hub", "jupyterhub.pid"))

c.JupyterHub.authenticator_class = "hub.authenticator.EnclaveAuthenticator"
c.JupyterHub.spawner_class = "hub.spawner.EnclaveSpawner"
c.Spawner.ip = "127.0.0.1"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.JupyterHub.shutdown_on_logout = True

c.JupyterHub.logging_config = {
    "handlers": {
        "file": {
            "class": "logging.FileHandler",
            "filename": str(state_path("logs", "hub.log")),
            "formatter": "file",
        }
    },
    "formatters": {"file": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "loggers": {"JupyterHub": {"handlers": ["console", "file"], "level": "INFO"}},
}
