"""Every notebook in notebooks/ and templates/ runs under nbval in the secure kernel on the demo.

Cells marked ``# NBVAL_CHECK_OUTPUT`` must reproduce their stored output exactly (the
blocked notice, the refusal); every other cell must run without error.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(REPO.glob("notebooks/*.ipynb")) + sorted(REPO.glob("templates/*.ipynb"))


def test_there_are_example_notebooks_and_templates():
    folders = {n.parent.name for n in NOTEBOOKS}
    assert folders == {"notebooks", "templates"}
    assert {n.stem for n in NOTEBOOKS} >= {"explorer", "course_success", "college_going", "transfer"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[f"{n.parent.name}/{n.stem}" for n in NOTEBOOKS])
def test_example_notebook_passes_nbval(notebook, demo_var):
    cells = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    assert nbformat.read(notebook, as_version=4).metadata["kernelspec"]["name"] == "enclave"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "--nbval-cell-timeout=120",
            "-p",
            "no:cacheprovider",
            "-q",
            str(notebook),
        ],
        env=dict(os.environ, ENCLAVE_VAR=str(demo_var)),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=notebook.parent,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))
    assert passed == len(cells)
