"""The ``datamill`` command: a click group whose commands live in one module each, imported when used.

``datamill --help`` lists the commands from the table below without importing them, so it starts in a
fraction of the time a command that reads data needs (each command module imports the pipeline, the
server or the model gateway it uses). `tests/test_cli_lazy.py` checks that the table's help lines are the
commands' own.
"""

from __future__ import annotations

import importlib

import click

#: Every command: its module and attribute, and the line ``datamill --help`` shows for it.
COMMANDS: dict[str, tuple[str, str]] = {
    "adapt": (
        "datamill.cli.adapt:adapt_command",
        "Adapt FILE into -o OUTPUT: dedup, expand, rephrase, complete, reason, pair, review and grade.",
    ),
    "demo": (
        "datamill.cli.adapt:demo_command",
        "Adapt the bundled sample (customer-support questions) with the embedded defaults.",
    ),
    "models": (
        "datamill.cli.models:models_command",
        "List the configured model names (and patterns) with their provider and prices.",
    ),
    "serve": (
        "datamill.cli.serve:serve_command",
        "Serve the Adaption-compatible API (point the SDK's base_url here); see docs/server.md.",
    ),
    "worker": (
        "datamill.cli.worker:worker_command",
        "Run queued adaptation jobs until stopped (SIGTERM or Ctrl-C).",
    ),
    "keys": ("datamill.cli.keys:keys_group", "Manage API keys (each belongs to a tenant)."),
    "tenants": ("datamill.cli.keys:tenants_group", "Manage tenants and their credit balances."),
    "spec": ("datamill.cli.generate:spec_group", "Write and check generation specs."),
    "generate": (
        "datamill.cli.generate:generate_command",
        "Generate -n samples that follow --spec into -o OUTPUT.",
    ),
}


class LazyGroup(click.Group):
    """A group whose commands are imported the first time they are run (or asked for their own help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target[0].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list, from the table (no command module is imported)."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, _shorten(COMMANDS[name][1], limit)) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _shorten(text: str, limit: int) -> str:
    """The help line cut as click cuts a command's short help."""
    return click.Command(None, help=text).get_short_help_str(limit)


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(package_name="datamill")
def cli() -> None:
    """Datamill turns raw data into LLM training data."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="datamill")


if __name__ == "__main__":  # pragma: no cover
    main()
