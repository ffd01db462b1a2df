"""``datamill serve``: run the HTTP server; with no configuration it keeps everything in the data dir.

On the first start (no API key exists yet) it issues a key for tenant ``default`` and prints it once.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from datamill.cli.errors import handle_errors
from datamill.cli.process import server_settings, use_lean_memory
from datamill.services.settings.server import ServerSettings

if TYPE_CHECKING:
    from datamill.services.tenants import IssuedKey

# The server packages (fastapi, uvicorn, sqlalchemy) come with the optional 'server' extra, so they are
# imported when a command needs them: the rest of the CLI works without the extra.


def bootstrap(settings: ServerSettings) -> IssuedKey | None:
    """Migrate the database and issue the first key if there is none; the new key, or None."""
    from datamill.services.tenants import TenantService
    from datamill.store import Store

    store = Store.from_url(settings.database_url)
    try:
        store.migrate()
        return TenantService(store, default_credits=settings.default_credits).ensure_initial_key()
    finally:
        store.close()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the database, blobs and keys live (default: DATAMILL_HOME or ~/.local/share/datamill).",
)
@click.option(
    "--no-worker", is_flag=True, help="Serve the API only; `datamill worker` processes run the jobs."
)
@handle_errors
def serve_command(host: str, port: int, data_dir: Path | None, no_worker: bool) -> None:
    """Serve the Adaption-compatible API (point the SDK's base_url here); see docs/server.md."""
    import uvicorn

    from datamill.server import create_app
    from datamill.server.context import ServerContext
    from datamill.server.deadlines import server_config
    from datamill.server.request_ids import log_config

    tree = server_settings(data_dir)
    use_lean_memory(tree.llm)
    settings = tree.server
    issued = bootstrap(settings)
    if issued is not None:
        click.secho(
            "Created the first API key, for tenant 'default'. It is shown only this once:", fg="yellow"
        )
        click.echo(f"\n    {issued.key}\n")
    click.echo(f"datamill: data in {settings.data_dir}; serving on http://{host}:{port} (docs at /docs)")
    if no_worker:
        tree = replace(tree, runs=replace(tree.runs, worker=False))
    context = ServerContext.from_settings(tree)
    app = create_app(context=context)
    config = server_config(
        app, settings, host=host, port=port, log_level="info", log_config=log_config("info")
    )
    uvicorn.Server(config).run()
