"""What a run needs to execute on Ray actors: the actor's plan, rebuilt on the actor, and the runners.

`ray_runners` connects to Ray (``DATAMILL_RAY_ADDRESS``) and returns the
`datamill.runners.ray_executor.RayBatchRunners` of one run. Each actor calls `actor_plan` (sent to it
pickled, with the run's request, model, options and `ActorInput`) to build its own gateway, with the response
cache in the data dir on its node and, with ``DATAMILL_SHARED_CONCURRENCY``, the budget in the run's
database, then rebuilds the steps of the run's stored plan as the worker did.

An actor needs nothing of the worker's disk: it reads the input file the worker reads when that file is on
its node too, and otherwise materialises the dataset itself, once per actor, from the metadata database and
the blob store (their URLs travel in the `ActorInput`) into ``<data dir>/inputs`` on its own node. The
checkpoint is the run's location, under ``DATAMILL_RUN_DATA_URL`` on object storage for a cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datamill.pipelines.checkpoint import BatchCheckpoint
from datamill.runners.inputs import dataset_input
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.adaptation.plans import input_cache_dir
from datamill.services.adaptation.prepare import RunSource, build_run
from datamill.services.adaptation.run_plan import RunPlan
from datamill.services.adaptation.step_services import close_services
from datamill.services.settings.runs import RunSettings
from datamill.store import BlobStore, Store, blob_store_from_url
from datamill.store.budget import DatabaseConcurrencyBudget
from datamill.text.fetch_policy import FetchPolicy

if TYPE_CHECKING:
    from datamill.runners.ray_executor import ActorPlan, RayBatchRunners


@dataclass(frozen=True)
class ActorInput:
    """Where an actor finds a run's input: the worker's file when its node has it, else the dataset.

    Attributes:
        local: the file the worker reads (on the worker's node).
        dataset_id: the input dataset, read from the database and blob store when `local` is not here.
        database_url: the metadata database.
        blob_url: the blob store holding the dataset's files.
    """

    local: RunSource
    dataset_id: str | None = None
    database_url: str | None = None
    blob_url: str | None = None


def _open_input(source: ActorInput, data_dir: Path, store: Store | None, stack: ExitStack) -> RunSource:
    """The worker's file when it exists here, else the dataset materialised under `data_dir`."""
    if source.local.path.is_file():
        return source.local
    if source.dataset_id is None or store is None or source.blob_url is None:
        raise FileNotFoundError(f"the run's input {source.local.path} is not on this node, and no dataset")
    blobs = blob_store_from_url(source.blob_url)
    found = stack.enter_context(dataset_input(store, blobs, source.dataset_id, input_cache_dir(data_dir)))
    return RunSource(found.path, found.format, local_image_files=False)


async def actor_plan(
    source: ActorInput,
    run: dict[str, Any],
    settings: RunSettings,
    data_dir: Path,
    shared_budget: bool,
) -> ActorPlan:
    """The steps of a run's stored plan on a Ray actor, on a gateway of the actor's own.

    `run` holds the run's kind, model, options, request and estimate (its stored plan); `data_dir` is on
    the actor's node.
    """
    from datamill.runners.ray_executor import ActorPlan

    stack = ExitStack()
    try:
        store = None
        if source.database_url and (shared_budget or not source.local.path.is_file()):
            store = Store.from_url(source.database_url)
            stack.callback(store.close)
        run_input = _open_input(source, data_dir, store, stack)
        budget = None
        if shared_budget and store is not None:
            budget = DatabaseConcurrencyBudget(store, owner="ray", ttl_s=settings.lease_s)
            stack.callback(budget.close)
        llm = settings.llm_settings(data_dir)
        gateway = make_gateway(llm, cache_commit_every=settings.cache_commit_every, budget=budget)
        try:
            plan = RunPlan.of_record(
                run["kind"], run["request"], run["model"], run["options"], run["estimate"]
            )
            found = RunSource(run_input.path, run_input.format, local_image_files=False)
            policy = FetchPolicy.with_allowed(settings.fetch_allow)
            prepared = await build_run(
                plan, found, gateway, data_dir, fetch_policy=policy, search_key=settings.grounding_search_key
            )
        except BaseException:
            await gateway.aclose()
            raise
    except BaseException:
        stack.close()
        raise

    async def close() -> None:
        try:
            await close_services(prepared.services)
            await gateway.aclose()
        finally:
            stack.close()

    return ActorPlan(prepared.steps, lambda: gateway.usage.total.cost_usd, close)


def ray_runners(
    settings: RunSettings,
    data_dir: Path,
    store: Store,
    blobs: BlobStore,
    run: dict[str, Any],
    source: RunSource,
    make_checkpoint: Callable[[], BatchCheckpoint],
) -> RayBatchRunners:
    """The Ray actors of one run (`run`: its stored plan's fields and its source dataset id)."""
    from datamill.runners.ray_executor import RayBatchRunners, connect

    connect(settings.ray_address)
    url = store.engine.url.render_as_string(hide_password=False)
    actor_input = ActorInput(source, run["source_dataset_id"], url, blobs.url)
    make_plan = partial(actor_plan, actor_input, run, settings, data_dir, settings.shared_concurrency)
    return RayBatchRunners(make_plan, make_checkpoint, actors=settings.ray_actors)
