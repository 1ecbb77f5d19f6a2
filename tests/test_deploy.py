"""The scale-out files agree with the code: what they name exists, and the lockdown carries over."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import yaml

from output_filters.policy import load_policy

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
VALUES = yaml.safe_load((DEPLOY / "z2jh-values.yaml").read_text())


def image_paths(dockerfile: str) -> list[Path]:
    text = (DEPLOY / dockerfile).read_text()
    return [REPO / p for p in re.findall(r"/opt/enclave/([\w/.-]+)", text)]


def test_the_classes_the_hub_is_configured_with_exist():
    module, _, name = VALUES["hub"]["config"]["JupyterHub"]["authenticator_class"].rpartition(".")
    assert getattr(importlib.import_module(module), name)
    compile(VALUES["hub"]["extraConfig"]["enclave"], "extraConfig", "exec")


def test_the_images_point_at_directories_of_the_repository():
    for dockerfile in ("hub.Dockerfile", "user.Dockerfile"):
        for path in image_paths(dockerfile):
            assert path.exists(), f"{dockerfile} names {path.relative_to(REPO)}, which does not exist"
    for path in VALUES["hub"]["config"]["JupyterHub"]["template_paths"]:
        assert (REPO / path.removeprefix("/opt/enclave/")).is_dir()


def test_user_pods_have_no_egress_and_the_culler_uses_the_policy():
    assert VALUES["singleuser"]["networkPolicy"]["egress"] == []
    assert not any(VALUES["singleuser"]["networkPolicy"]["egressAllowRules"].values())
    assert VALUES["cull"]["enabled"] and VALUES["cull"]["timeout"] == load_policy().accounts.idle_timeout_minutes * 60
    assert VALUES["singleuser"]["allowPrivilegeEscalation"] is False and VALUES["singleuser"]["uid"] == 1000


def test_the_user_image_configures_the_server_from_read_only_directories():
    text = (DEPLOY / "user.Dockerfile").read_text()
    for variable in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        assert f"{variable}=/opt/enclave/hub/user_server/" in text, variable
    assert "chmod -R go-w /opt/enclave" in text and "USER 1000" in text


def test_the_release_page_is_a_hub_service_in_the_chart_as_on_one_machine():
    """The chart's release service is the local hub's (``service_entry``): the same command,
    OAuth without a confirmation step, shown on the home page, reached through the proxy on a
    port the hub Service opens and the network policies let the proxy (only) reach."""
    from hub.release import service
    from hub.roles import RELEASE_SERVICE, load_roles

    hub = VALUES["hub"]
    spec = hub["services"][RELEASE_SERVICE]
    local = service.service_entry("http://127.0.0.1:8002", {})
    assert RELEASE_SERVICE == service.NAME == local["name"]
    for key in ("command", "oauth_no_confirm", "display"):
        assert spec[key] == local[key], key
    module = spec["command"][spec["command"].index("-m") + 1]
    assert callable(importlib.import_module(module).main)

    port = int(spec["url"].rsplit(":", 1)[1])
    [opened] = [p for p in hub["service"]["extraPorts"] if p["name"] == RELEASE_SERVICE]
    assert opened["port"] == opened["targetPort"] == port
    [ingress] = hub["networkPolicy"]["ingress"]
    assert hub["networkPolicy"]["enabled"] and [p["port"] for p in ingress["ports"]] == [port]
    assert ingress["from"] == [{"podSelector": {"matchLabels": {"hub.jupyter.org/network-access-hub": "true"}}}]
    [egress] = VALUES["proxy"]["chp"]["networkPolicy"]["egress"]
    assert [p["port"] for p in egress["ports"]] == [port]
    assert egress["to"] == [{"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "hub"}}}]

    # It listens on the pod's address and gets the hub's Enclave settings, state on a volume.
    env = hub["extraEnv"]
    assert env["ENCLAVE_RELEASE_BIND"] == {"valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    assert {"ENCLAVE_ACCOUNTS_URL", "ENCLAVE_AUDIT_URL", "ENCLAVE_DATABASE_URL", "ENCLAVE_VAR"} <= set(env)
    assert env["ENCLAVE_VAR"] in [m["mountPath"] for m in hub["extraVolumeMounts"] if not m.get("readOnly")]
    config = hub["extraConfig"]["enclave"]
    assert 'service.get("name") == "release"' in config and 'startswith("ENCLAVE_")' in config

    # The same OAuth roles: every Enclave account may open it, through the chart's load_roles.
    [member] = [r for r in load_roles() if r["name"] == "enclave-member"]
    assert f"access:services!service={RELEASE_SERVICE}" in member["scopes"]
    assert "load_roles()" in config
