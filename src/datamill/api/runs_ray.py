"""What a run needs to execute on Ray actors: the actor's plan, rebuilt on the actor, and the runners.

`ray_runners` connects to Ray (``DATAMILL_RAY_ADDRESS``) and returns the
`datamill.runners.ray_executor.RayBatchRunners` of one run. Each actor calls `actor_plan` (sent to it
pickled, with the run's request, model, options and input) to build its own gateway, with the response
cache in the data dir and, with ``DATAMILL_SHARED_CONCURRENCY``, the budget in the run's database, then plans
the run as the worker did. The actors read the input file and write the checkpoint where the worker does, so
on a cluster of several machines the data dir must be shared.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datamill.api.adapt import make_gateway
from datamill.api.runs_plans import options_from_dict, prepare_run, run_job
from datamill.api.runs_settings import RunSettings
from datamill.pipelines.checkpoint import BatchCheckpoint
from datamill.runners.inputs import RunInput
from datamill.store import Store
from datamill.store.budget import DatabaseConcurrencyBudget

if TYPE_CHECKING:
    from datamill.runners.ray_executor import ActorPlan, RayBatchRunners


async def actor_plan(
    kind: str,
    source: RunInput,
    model: str,
    options: dict[str, Any],
    request: dict[str, Any],
    settings: RunSettings,
    data_dir: Path,
    database_url: str | None,
) -> ActorPlan:
    """The plan of a run on a Ray actor, on a gateway of the actor's own."""
    from datamill.runners.ray_executor import ActorPlan

    store = Store.from_url(database_url) if database_url else None
    budget = DatabaseConcurrencyBudget(store, owner="ray", ttl_s=settings.lease_s) if store else None
    llm = settings.llm_settings(data_dir)
    gateway = make_gateway(llm, cache_commit_every=settings.cache_commit_every, budget=budget)
    prepared = await prepare_run(
        kind, run_job(source, model, options_from_dict(options)), request, llm, gateway
    )

    async def close() -> None:
        await gateway.aclose()
        if budget is not None and store is not None:
            budget.close()
            store.close()

    return ActorPlan(prepared.plan, lambda: gateway.usage.total.cost_usd, close)


def ray_runners(
    settings: RunSettings,
    data_dir: Path,
    store: Store,
    run: dict[str, Any],
    source: RunInput,
    make_checkpoint: Callable[[], BatchCheckpoint],
) -> RayBatchRunners:
    """The Ray actors of one run (`run`: its kind, model, options and request)."""
    from datamill.runners.ray_executor import RayBatchRunners, connect

    connect(settings.ray_address)
    url = store.engine.url.render_as_string(hide_password=False) if settings.shared_concurrency else None
    make_plan = partial(
        actor_plan, run["kind"], source, run["model"], run["options"], run["request"], settings, data_dir, url
    )
    return RayBatchRunners(make_plan, make_checkpoint, actors=settings.ray_actors)
