"""``datamill --help`` imports no command: the list comes from a table that must match the commands."""

from __future__ import annotations

import re
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from datamill.cli.main import COMMANDS, cli

#: What the ``datamill`` console script runs.
CONSOLE_SCRIPT = "import sys; from datamill.cli.main import main; sys.argv[0] = 'datamill'; main()"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_shows_each_commands_own_help_line(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert command.name == name
    assert click.Command(None, help=COMMANDS[name][1]).get_short_help_str(200) == command.get_short_help_str(
        200
    )


def test_help_imports_no_command_module() -> None:
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", CONSOLE_SCRIPT, "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = set(re.findall(r"\|\s+([\w.]+)\s*$", run.stderr, flags=re.MULTILINE))
    assert {m for m in imported if m.startswith("datamill")} == {
        "datamill",
        "datamill.cli",
        "datamill.cli.main",
    }
    assert not imported & {"pyarrow", "pydantic", "numpy", "aiohttp", "rich", "jinja2", "importlib.metadata"}
    for name in COMMANDS:
        assert name in run.stdout


def test_a_command_still_runs_through_the_lazy_group() -> None:
    result = CliRunner().invoke(cli, ["spec", "--help"])
    assert result.exit_code == 0
    assert "evaluate" in result.output
    assert "create" in result.output
