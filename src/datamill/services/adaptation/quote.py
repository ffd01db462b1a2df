"""Quoting a run at launch: validate it against the dataset's data and the model, plan it, estimate it.

`RunQuoter.quote` is blocking (request handlers run on a thread pool): it reads the input, renders the
prompts of a sample of rows and counts their tokens, without calling any model. Problems are sorted by whose
they are:

- a bad request, or one this data or model cannot serve (a mapping naming a missing column, an image column
  on a model without vision) → `ValidationError` (400, naming the field);
- input that cannot be read → `DatasetNotRunnableError` (400);
- a model setting the server cannot serve (an unknown ``DATAMILL_MODEL``, a missing key variable) →
  `RunConfigError` (500, with the reason: it is the operator's to fix, and no retry will help).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datamill.core.errors import ConfigError, DataFormatError, ModelError
from datamill.pipelines.estimate import Estimate
from datamill.runners.inputs import dataset_input
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.adaptation.plans import input_cache_dir, options_to_dict, prepare_run, run_job
from datamill.services.errors import ServiceError
from datamill.services.settings.runs import RunSettings
from datamill.store import BlobStore, Store


class DatasetNotRunnableError(ServiceError):
    """The dataset has no data a run could read (its upload failed, or its files are gone)."""


class RunConfigError(ServiceError):
    """The server's model configuration cannot serve runs; the operator must fix it."""


@dataclass(frozen=True)
class Quote:
    """A validated, estimated run, ready to be persisted.

    Attributes:
        request: the normalized request (run/adapt shape) the worker will execute.
        options: the run options, as stored with the run.
        model: the public name of the model the run uses.
        estimate: the estimate.
    """

    request: dict[str, Any]
    options: dict[str, Any]
    model: str
    estimate: Estimate


class RunQuoter:
    """Quotes runs over the datasets of one store; see the module docstring."""

    def __init__(self, store: Store, blobs: BlobStore, settings: RunSettings, data_dir: Path) -> None:
        self._store, self._blobs, self._settings, self._data_dir = store, blobs, settings, data_dir

    def quote(self, kind: str, dataset_id: str, body: Mapping[str, Any]) -> Quote:
        """Quote a run of `kind` over `dataset_id`'s files with the run/adapt-shaped `body`."""
        try:
            return asyncio.run(self._quote(kind, dataset_id, body))
        except DataFormatError as exc:
            raise DatasetNotRunnableError(f"the dataset's data cannot be read: {exc.reason}") from exc
        except FileNotFoundError as exc:
            raise DatasetNotRunnableError(f"the dataset has no data to run on: {exc}") from exc
        except (ConfigError, ModelError) as exc:
            raise RunConfigError(f"the server cannot run models as configured: {exc}") from exc

    async def _quote(self, kind: str, dataset_id: str, body: Mapping[str, Any]) -> Quote:
        llm = self._settings.llm_settings(self._data_dir)
        options = self._settings.run_options()
        # No response cache: a quote calls no model, and opening the cache would only contend with runs.
        gateway = make_gateway(llm, use_cache=False)
        try:
            cache = input_cache_dir(self._data_dir)
            with dataset_input(self._store, self._blobs, dataset_id, cache) as source:
                job = run_job(source, gateway.default_model, options)
                prepared = await prepare_run(kind, job, body, llm, gateway)
        finally:
            await gateway.aclose()
        return Quote(
            prepared.request.to_dict(), options_to_dict(options), prepared.model.name, prepared.estimate
        )
