"""`RunServices`: the run services of one server, wired together, and the in-process worker's lifecycle."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from datamill.runners.worker import BackgroundWorker, Worker, default_worker_id
from datamill.services.adaptation.expand import ExpandService
from datamill.services.adaptation.extend import ExtendService
from datamill.services.adaptation.launch import RunService
from datamill.services.adaptation.quote import RunQuoter
from datamill.services.datasets.catalog import DatasetService
from datamill.services.datasets.downloads import DownloadService
from datamill.services.datasets.evaluations import EvaluationService
from datamill.services.datasets.invent import INVENT_JOB
from datamill.services.jobs.adaptation import RunExecutor
from datamill.services.jobs.autoscientist import AutoscientistExecutor
from datamill.services.jobs.executor import JobExecutor
from datamill.services.jobs.generation import PAID_JOB_KINDS, generation_executors
from datamill.services.jobs.invent import InventExecutor
from datamill.services.settings.runs import RunSettings
from datamill.store import BlobStore, Store
from datamill.store.autoscientist_models import AUTOSCIENTIST_JOB
from datamill.store.budget import DatabaseConcurrencyBudget


@dataclass(frozen=True)
class RunServices:
    """Launching, expanding, extending, downloading, evaluating, and the worker that executes runs."""

    settings: RunSettings
    quoter: RunQuoter
    launcher: RunService
    expand: ExpandService
    extend: ExtendService
    downloads: DownloadService
    evaluations: EvaluationService
    worker: BackgroundWorker

    @classmethod
    def build(cls, store: Store, blobs: BlobStore, settings: RunSettings, data_dir: Path) -> RunServices:
        """Wire everything; nothing starts until `start`."""
        budget = None
        if settings.shared_concurrency:
            budget = DatabaseConcurrencyBudget(store, owner=default_worker_id(), ttl_s=settings.lease_s)
        worker = BackgroundWorker(
            Worker(
                store,
                JobExecutor(
                    RunExecutor(store, blobs, settings, data_dir, budget=budget),
                    {
                        **generation_executors(store, blobs, settings, data_dir),
                        INVENT_JOB: InventExecutor(store, blobs, settings, data_dir),
                        AUTOSCIENTIST_JOB: AutoscientistExecutor(store, blobs, settings, data_dir),
                    },
                    prices=settings.price_table,
                    paid=(*PAID_JOB_KINDS, AUTOSCIENTIST_JOB),
                ),
                lease_s=settings.lease_s,
                poll_s=settings.poll_s,
                max_attempts=settings.max_attempts,
            ),
            loop=settings.event_loop,
        )
        quoter = RunQuoter(store, blobs, settings, data_dir)
        launcher = RunService(store, quoter, on_queued=worker.wake)
        datasets = DatasetService(store)
        return cls(
            settings=settings,
            quoter=quoter,
            launcher=launcher,
            expand=ExpandService(launcher, quoter, settings),
            extend=ExtendService(launcher, quoter, settings),
            downloads=DownloadService(store, datasets, data_dir, runs_url=settings.run_data_url),
            evaluations=EvaluationService(store, datasets),
            worker=worker,
        )

    def start(self) -> None:
        """Start the in-process worker, unless the settings turn it off (runs then wait in the queue).

        The quoter loads what every estimate needs on a thread of its own, so the first estimate after a
        start does not wait for it.
        """
        threading.Thread(target=self.quoter.warm, name="datamill-quoter-warm", daemon=True).start()
        self.downloads.purge()
        if self.settings.worker:
            self.worker.start()

    def close(self) -> None:
        """Stop the worker; the run it was executing goes back to the queue and resumes on the next start."""
        self.worker.close()
