"""``datamill worker``: execute queued runs in this process, beside `datamill serve --no-worker` or others.

Workers share the server's database and data directory; each claims one run at a time with a lease it keeps
extending, so two workers never run the same job and a dead worker's job is taken over when its lease lapses.
SIGTERM or Ctrl-C stops the worker: the run in progress goes back to the queue, keeping its finished batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from datamill.cli.errors import handle_errors
from datamill.cli.process import quiet_gc, server_settings, use_lean_memory
from datamill.llm import event_loop

if TYPE_CHECKING:
    from datamill.runners.worker import Worker


@click.command("worker")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The server's data dir (default: DATAMILL_HOME or ~/.local/share/datamill).",
)
@handle_errors
def worker_command(data_dir: Path | None) -> None:
    """Run queued adaptation jobs until stopped (SIGTERM or Ctrl-C)."""
    import logging.config

    from datamill.server.context import ServerContext
    from datamill.server.request_ids import log_config

    # The server's log format: time, level, logger, request id ("-": a worker serves none), message.
    logging.config.dictConfig(log_config("info"))

    tree = server_settings(data_dir)
    use_lean_memory(tree.llm)
    settings = tree.server
    context = ServerContext.from_settings(tree)
    context.store.migrate()
    worker = context.runs.worker.worker
    click.echo(f"datamill worker {worker.worker_id}: data in {settings.data_dir}; waiting for runs")
    try:
        with quiet_gc():
            event_loop.run(_work(worker), tree.runs.event_loop)
    finally:
        context.store.close()
    click.echo(f"datamill worker {worker.worker_id}: stopped")


async def _work(worker: Worker) -> None:
    stop, wake = asyncio.Event(), asyncio.Event()
    task = asyncio.ensure_future(worker.run(stop, wake))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Cancelling gives the run in progress back to the queue, with its finished batches checkpointed.
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
