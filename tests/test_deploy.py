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
