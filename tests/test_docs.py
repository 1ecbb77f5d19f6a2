"""The README stays true: every policy setting and every `enclave` command is documented."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import click
import pytest

from hub.cli import enclave
from output_filters.policy import AccountRules, Policy

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
POLICY_KEYS = [("disclosure", f.name) for f in fields(Policy) if f.name != "accounts"] + [
    ("accounts", f.name) for f in fields(AccountRules)
]


@pytest.mark.parametrize(("section", "key"), POLICY_KEYS, ids=[f"{s}.{k}" for s, k in POLICY_KEYS])
def test_every_policy_setting_is_in_the_readme(section, key):
    rows = [line for line in README.splitlines() if line.startswith(f"| `[{section}] ")]
    assert any(f"`{key}`" in row or f"] {key}`" in row or f" {key}," in row for row in rows), key


def commands(group: click.Group, prefix: str = "enclave") -> list[str]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.extend(commands(command, f"{prefix} {name}"))
        else:
            found.append(f"{prefix} {name}")
    return found


@pytest.mark.parametrize("command", commands(enclave))
def test_every_command_is_in_the_readme(command):
    assert command in README, f"README's CLI section lacks `{command}`"
