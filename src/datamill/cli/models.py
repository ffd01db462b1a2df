"""``datamill models``: the model names the routing file knows, and where each one goes."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from datamill.cli.errors import handle_errors
from datamill.cli.process import command_settings
from datamill.core.errors import ConfigError
from datamill.llm.routing import Routing


@click.command("models")
@click.option("--routes", type=click.Path(path_type=Path), help="A routing file to add to the shipped one.")
@handle_errors
def models_command(routes: Path | None) -> None:
    """List the configured model names (and patterns) with their provider and prices."""
    settings = command_settings()
    routing = Routing.load(routes or settings.routes_path, environ=settings.environ)
    table = Table(title=f"models (default: {routing.default_model})", title_justify="left")
    for column in ("name", "provider", "model id", "key variable", "$/M in", "$/M out", "note"):
        table.add_column(column)
    for name in routing.names():
        # A pattern is shown through a placeholder name that it matches.
        try:
            route = routing.resolve(name.replace("*", "<name>"))
        except ConfigError as exc:
            table.add_row(name, "-", "-", "-", "-", "-", str(exc))
            continue
        table.add_row(
            name,
            route.provider,
            route.model,
            route.api_key_env or "-",
            f"{route.input_price:g}",
            f"{route.output_price:g}",
            "",
        )
    console = Console()
    if not console.is_terminal:  # piped: don't squeeze names into 80 columns
        console = Console(width=200)
    console.print(table)
