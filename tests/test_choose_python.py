"""`make install` as root builds the venv from an interpreter other accounts can pass
(hub/choose-python.sh), and says which it chose and why."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "hub" / "choose-python.sh"


def fake_python(directory: Path, executable: Path, prefix: Path) -> Path:
    """A stand-in for an interpreter that lives at ``executable`` (it reports that path)."""
    directory.mkdir(parents=True, exist_ok=True)
    fake = directory / "python3.11"
    fake.write_text(f'#!/bin/sh\necho "{executable} {prefix}"\n')
    fake.chmod(0o755)
    return fake


def choose(python: Path | None, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin"}
    if python is not None:
        env["PYTHON"] = str(python)
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, cwd=tmp_path, check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="the choice depends on other accounts only as root (CI runs as root)")
def test_an_interpreter_under_a_closed_directory_gives_way_to_debians(tmp_path):
    if not Path("/usr/bin/python3.11").exists():
        pytest.fail("Debian's python3.11 is missing (apt-get install python3.11; .ci/run does it)")
    closed = tmp_path / "closed"
    fake = fake_python(tmp_path / "shims", closed / "versions" / "bin" / "python3.11", closed / "versions")
    closed.mkdir(mode=0o700)
    tmp_path.chmod(0o711)
    done = choose(fake, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "/usr/bin/python3.11"
    assert f"other accounts cannot pass {closed}" in done.stderr
    assert "Python: /usr/bin/python3.11 (other accounts can pass its directories" in done.stderr


def test_a_passable_interpreter_is_kept(tmp_path):
    done = choose(None, tmp_path)
    assert done.returncode == 0, done.stderr
    chosen = Path(done.stdout.strip())
    assert chosen.is_file() and "Python: " in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="only root opens directories (CI runs as root)")
def test_make_up_opens_the_directories_above_the_checkout_for_passing():
    top = Path(tempfile.mkdtemp(prefix="enclave-open-", dir="/tmp"))  # under /tmp: nothing else to open
    top.chmod(0o711)
    closed = top / "closed"
    checkout = closed / "enclave"
    (checkout / "hub").mkdir(parents=True)
    script = checkout / "hub" / "open-checkout.sh"
    script.write_text((SCRIPT.parent / "open-checkout.sh").read_text())
    closed.chmod(0o700)
    done = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert closed.stat().st_mode & 0o777 == 0o701  # passable, still not listable
    assert f"Opened {closed} for passing" in done.stderr
    again = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=False)
    assert again.stderr == ""  # nothing left to open
    shutil.rmtree(top)
