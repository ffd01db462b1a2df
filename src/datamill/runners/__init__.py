"""Durable jobs: workers claim queued runs from the database, keep them leased, execute them and settle them.

`Worker` is the loop (claim → execute with a `Heartbeat` → finish); what executing a run means is injected as
a `RunExecutor` by the layer above (the services build the adaptation plan), so this package knows the job
protocol, not the pipeline's configuration. `BackgroundWorker` runs a worker on its own thread and event loop
inside the server. `outputs` reads a run's checkpointed output and converts it for downloads; `inputs` gives
a dataset's files to a run as one local file.
"""

from datamill.runners.execution import LiveRun, RunExecutor, RunTicket
from datamill.runners.worker import BackgroundWorker, Worker

__all__ = ["BackgroundWorker", "LiveRun", "RunExecutor", "RunTicket", "Worker"]
