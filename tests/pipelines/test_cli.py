"""`mlp`: every command group is listed and runs, and only the group that runs is imported."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import cli

COMMANDS_DIR = Path(cli.__file__).parent / "commands"


def test_every_command_module_is_a_group() -> None:
    loaded = [group.load() for group in cli.GROUPS.values()]
    assert len({id(app) for app in loaded}) == len(loaded), "two groups load the same app"
    for path in COMMANDS_DIR.glob("*.py"):
        if path.stem != "__init__":
            module = importlib.import_module(f"pipelines.commands.{path.stem}")
            assert any(module.app is app for app in loaded), f"{path.name} has no group in pipelines/cli.py GROUPS"


@pytest.mark.parametrize("name", list(cli.GROUPS))
def test_each_group_runs_its_help(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", name, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert cli.GROUPS[name].help.split(":")[0] in result.stdout


def test_help_lists_the_groups_without_importing_them() -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['mlp', '--help']\n"
        "try:\n"
        "    runpy.run_module('pipelines.cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('mlflow', 'evidently', 'cdktn', 'pipelines.commands.model') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    for name in cli.GROUPS:
        assert name in result.stdout
    assert "HEAVY []" in result.stdout, result.stdout


def test_an_unknown_group_is_a_usage_error_naming_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "deploy"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "No such command 'deploy'" in result.stderr


def test_every_command_of_every_group_is_reachable_as_its_group_declares_it(capsys: pytest.CaptureFixture[str]) -> None:
    """`mlp <group> <command>` for each command each group module declares: a group with a single command (cost,
    images) stays a group, as `add_typer` mounts it."""
    for name, group in cli.GROUPS.items():
        sub_app = group.load()
        for declared in sub_app.registered_commands:
            command = declared.name or declared.callback.__name__.replace("_", "-")  # type: ignore[union-attr]
            code = cli.app.main([name, command, "--help"], prog_name="mlp", standalone_mode=False)
            assert code == 0, f"mlp {name} {command}"
            assert f"mlp {name} {command}" in capsys.readouterr().out
