"""Shared fixtures.

- ``isolated_state`` (autouse): ENCLAVE_VAR points into the test's tmp_path, so no test reads
  or writes the developer's var/.
- ``demo_var`` (session): a small demo consortium (3,000 students, seed 7) built once through
  the real generator and upload path; tests treat it as read-only.
- ``use_demo``: points ENCLAVE_VAR at ``demo_var`` for one test (read-only use).
- ``demo_copy``: a private copy of the demo for a test that writes (accounts, audit).
- ``kernel`` (module): a real ``enclave`` kernel over the Jupyter protocol, reading the demo;
  ``kernel.run(code)`` returns what reached the client.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kernel_client import KernelSession

DEMO_STUDENTS = 3000
DEMO_SEED = 7


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    state = tmp_path / "var"
    monkeypatch.setenv("ENCLAVE_VAR", str(state))
    for name in (
        "ENCLAVE_DATABASE_URL",
        "ENCLAVE_ACCOUNTS_URL",
        "ENCLAVE_AUDIT_URL",
        "ENCLAVE_STUDENT_KEY",
        "ENCLAVE_POLICY",
    ):
        monkeypatch.delenv(name, raising=False)
    return state


@pytest.fixture(scope="session")
def demo_var(tmp_path_factory) -> Path:
    state = tmp_path_factory.mktemp("demo") / "var"
    env = dict(os.environ, ENCLAVE_VAR=str(state))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hub.cli",
            "demo",
            "build",
            "--students",
            str(DEMO_STUDENTS),
            "--seed",
            str(DEMO_SEED),
        ],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    return state


@pytest.fixture
def use_demo(demo_var, monkeypatch) -> Path:
    monkeypatch.setenv("ENCLAVE_VAR", str(demo_var))
    return demo_var


@pytest.fixture
def demo_copy(demo_var, tmp_path, monkeypatch) -> Path:
    state = tmp_path / "demo-copy"
    shutil.copytree(demo_var, state)
    monkeypatch.setenv("ENCLAVE_VAR", str(state))
    return state


@pytest.fixture(scope="module")
def kernel(demo_var, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("kernel-cwd")
    session = KernelSession(env={"ENCLAVE_VAR": str(demo_var)}, cwd=str(workdir))
    session.workdir = workdir
    yield session
    session.close()
