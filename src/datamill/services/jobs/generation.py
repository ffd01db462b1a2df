"""The executors of the generation jobs, by ``runs.kind`` (see `datamill.store.generation_models`)."""

from __future__ import annotations

from pathlib import Path

from datamill.runners.execution import RunExecutor
from datamill.services.jobs.anonymization import AnonymizationJobExecutor, AnonymizationZipExecutor
from datamill.services.jobs.generation_eval import EvalJobExecutor
from datamill.services.jobs.generation_run import RunJobExecutor
from datamill.services.jobs.generation_zip import ZipJobExecutor
from datamill.services.jobs.red_team import RedTeamJobExecutor
from datamill.services.jobs.spec_analysis import SpecJobExecutor
from datamill.services.settings.runs import RunSettings
from datamill.store import BlobStore, Store
from datamill.store.anonymization_models import ANONYMIZATION_JOB, ANONYMIZATION_ZIP_JOB
from datamill.store.generation_models import GENERATION_EVAL_JOB, GENERATION_JOB, GENERATION_ZIP_JOB, SPEC_JOB
from datamill.store.red_team_models import RED_TEAM_JOB

#: The jobs charged credits when they end (`datamill.services.generation.credits`); a ZIP of files is free.
PAID_JOB_KINDS = (SPEC_JOB, GENERATION_JOB, GENERATION_EVAL_JOB, RED_TEAM_JOB, ANONYMIZATION_JOB)


def generation_executors(
    store: Store, blobs: BlobStore, settings: RunSettings, data_dir: Path
) -> dict[str, RunExecutor]:
    """One executor per generation job kind, sharing the server's store, blobs and run settings."""
    executors: dict[str, RunExecutor] = {}
    executors[SPEC_JOB] = SpecJobExecutor(store, blobs, settings, data_dir)
    executors[GENERATION_JOB] = RunJobExecutor(store, blobs, settings, data_dir)
    executors[GENERATION_ZIP_JOB] = ZipJobExecutor(store, blobs, settings, data_dir)
    executors[GENERATION_EVAL_JOB] = EvalJobExecutor(store, blobs, settings, data_dir)
    executors[RED_TEAM_JOB] = RedTeamJobExecutor(store, settings, data_dir)
    executors[ANONYMIZATION_JOB] = AnonymizationJobExecutor(store, blobs, settings, data_dir)
    executors[ANONYMIZATION_ZIP_JOB] = AnonymizationZipExecutor(store, blobs, settings, data_dir)
    return executors
