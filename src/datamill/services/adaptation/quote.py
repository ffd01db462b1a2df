"""Quoting a run at launch: validate it against the dataset's data and the model, plan it, estimate it.

`RunQuoter.quote` is blocking (request handlers run on a thread pool): it reads the input, renders the
prompts of a sample of rows and counts their tokens, without calling any model. Problems are sorted by whose
they are:

- a bad request, or one this data or model cannot serve (a mapping naming a missing column, an image column
  on a model without vision) → `ValidationError` (400, naming the field);
- input that cannot be read → `DatasetNotRunnableError` (400);
- a model setting the server cannot serve (an unknown ``DATAMILL_MODEL``, a missing key variable) →
  `RunConfigError` (500, with the reason: it is the operator's to fix, and no retry will help).

A quoter loads the routing file and the token counter's vocabulary once (`warm`, on a thread of its own
when the server starts) and keeps them for the server's life: a quote then costs a pass over the input's
rows and a sample's prompts, not a parse of the routes and a vocabulary load (``bench/server_estimate.py``
measures it). A quote made after the routing file changed uses the routes read at the start; runs read the
file when they start.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path

from datamill.core.adapt_request import AdaptRequest
from datamill.core.errors import ConfigError, DataFormatError, ModelError
from datamill.llm.gateway import Gateway
from datamill.llm.routing import Routing
from datamill.pipelines.estimate import Estimate
from datamill.runners.inputs import dataset_input
from datamill.services.adaptation.plans import input_cache_dir
from datamill.services.adaptation.prepare import RunSource, plan_run
from datamill.services.adaptation.run_plan import RunPlan
from datamill.services.errors import ServiceError
from datamill.services.settings.runs import RunSettings
from datamill.store import BlobStore, Store
from datamill.text.tokenizer import Tokenizer, default_tokenizer


class DatasetNotRunnableError(ServiceError):
    """The dataset has no data a run could read (its upload failed, or its files are gone)."""


class RunConfigError(ServiceError):
    """The server's model configuration cannot serve runs; the operator must fix it."""


@dataclass(frozen=True)
class Quote:
    """A validated, estimated run, ready to be persisted.

    Attributes:
        plan: what the run will do, as the worker will execute it (stored with the run).
        estimate: the estimate.
    """

    plan: RunPlan
    estimate: Estimate

    @property
    def model(self) -> str:
        """The public name of the model the run uses."""
        return self.plan.model


class RunQuoter:
    """Quotes runs over the datasets of one store; see the module docstring."""

    def __init__(self, store: Store, blobs: BlobStore, settings: RunSettings, data_dir: Path) -> None:
        self._store, self._blobs, self._settings, self._data_dir = store, blobs, settings, data_dir
        self._routing: Routing | None = None
        self._tokenizer: Tokenizer | None = None
        self._warming = threading.Lock()

    def warm(self) -> None:
        """Load the routing file and the token counter once (the first quote does it when nobody did)."""
        with self._warming:
            if self._routing is None or self._tokenizer is None:
                llm = self._settings.llm_settings(self._data_dir)
                tokenizer = default_tokenizer()
                tokenizer.count("warm")  # a vocabulary loads on its first count
                self._routing, self._tokenizer = Routing.load(llm.routes_path), tokenizer

    def models(self) -> tuple[str, list[str]]:
        """The runs' default model, and the model names a run request may give (``model``).

        The default comes first, then every name the routing file gives (not its patterns) whose route is
        usable now (its key variable set, when it needs one), in routing-file order.
        """
        llm = self._settings.llm_settings(self._data_dir)
        # The routes quotes use once warm; no token counter is loaded for a list of names.
        routing = self._routing or Routing.load(llm.routes_path)
        default = llm.model or routing.default_model
        names = [default]
        for name in routing.names():
            if name == default or any(c in name for c in "*?["):
                continue
            try:
                route = routing.resolve(name)
            except (ConfigError, ModelError):
                continue
            if route.api_key_env is None or route.api_key is not None:
                names.append(name)
        return default, names

    def quote(self, kind: str, dataset_id: str, request: AdaptRequest) -> Quote:
        """Quote a run of `kind` over `dataset_id`'s files executing `request` (its mapping filled in)."""
        try:
            return asyncio.run(self._quote(kind, dataset_id, request))
        except DataFormatError as exc:
            raise DatasetNotRunnableError(f"the dataset's data cannot be read: {exc.reason}") from exc
        except FileNotFoundError as exc:
            raise DatasetNotRunnableError(f"the dataset has no data to run on: {exc}") from exc
        except (ConfigError, ModelError) as exc:
            raise RunConfigError(f"the server cannot run models as configured: {exc}") from exc

    async def _quote(self, kind: str, dataset_id: str, request: AdaptRequest) -> Quote:
        llm = self._settings.llm_settings(self._data_dir)
        self.warm()
        assert self._routing is not None
        # No response cache: a quote calls no model, and opening the cache would only contend with runs.
        gateway = Gateway(self._routing, default_model=llm.model)
        try:
            cache = input_cache_dir(self._data_dir)
            with dataset_input(self._store, self._blobs, dataset_id, cache) as found:
                source = RunSource(found.path, found.format, local_image_files=False)
                options = self._settings.run_options()
                prepared = await plan_run(
                    kind,
                    source,
                    request,
                    gateway.default_model,
                    options,
                    gateway,
                    llm.data_dir,
                    tokenizer=self._tokenizer,
                )
        finally:
            await gateway.aclose()
        assert prepared.estimate is not None  # plan_run always estimates
        return Quote(prepared.plan, prepared.estimate)
