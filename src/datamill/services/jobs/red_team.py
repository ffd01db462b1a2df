"""The ``RED_TEAM_JOB`` executor: write a red-team run's adversarial prompts (`datamill.pipelines.red_team`).

The run's model (a ``databricks/`` one through the credentials in the job's request) writes the behaviours
and prompts through the gateway; the prompts kept so far are the job's ``processed_rows``, its model spend
its ``cost_usd``. The results and their summary are written in the transaction that records the job's
success; a run whose model cannot reach the asked count fails with the reason (`RedTeamIncomplete`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from datamill.core.error_codes import ErrorCode, error_data
from datamill.core.errors import ConfigError, ModelError
from datamill.pipelines.red_team import RedTeamGenerator, RedTeamIncomplete, RedTeamTarget
from datamill.runners.execution import LiveRun, RunTicket
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.generation.databricks import model_handle
from datamill.services.jobs.failures import job_failure
from datamill.services.settings.runs import RunSettings
from datamill.store import Store
from datamill.store.jobs import CREDENTIALS
from datamill.store.models import utcnow
from datamill.store.red_team import get_red_team_run_any_tenant
from datamill.store.red_team_models import RedTeamRun
from datamill.store.runs import RunOutcome
from datamill.text.fetch_policy import FetchPolicy

log = logging.getLogger(__name__)


class RedTeamJobExecutor:
    """Executes red-team jobs for a worker; see the module docstring."""

    def __init__(self, store: Store, settings: RunSettings, data_dir: Path) -> None:
        self._store, self._settings, self._data_dir = store, settings, data_dir

    async def __call__(self, ticket: RunTicket, live: LiveRun) -> RunOutcome:
        run_id = ticket.source_dataset_id
        with self._store.session() as session:
            run = get_red_team_run_any_tenant(session, run_id)
            if run is None:
                return RunOutcome(
                    "failed", error_data=error_data(ErrorCode.REQUEST_UNFIT, "the run was deleted")
                )
            target = RedTeamTarget(
                run.target["app_description"], run.target["domain_description"], run.target.get("concerns")
            )
            model_name, behaviors, per = (
                run.model_name,
                run.number_of_behaviors,
                run.number_of_prompts_per_behavior,
            )
        credentials = {str(k): str(v) for k, v in (ticket.request.get(CREDENTIALS) or {}).items()}
        gateway = make_gateway(self._settings.llm_settings(self._data_dir))
        base_cost = ticket.cost_usd
        live.cost_usd = lambda: base_cost + gateway.usage.total.cost_usd
        live.total_rows = behaviors * per

        def progress(kept: int) -> None:
            live.counters.rows_done = kept

        try:
            policy = FetchPolicy.with_allowed(self._settings.fetch_allow)
            model = model_handle(gateway, model_name, "generation", credentials, policy)
            result = await RedTeamGenerator(model, target, progress).run(behaviors, per)
        except (RedTeamIncomplete, ConfigError, ModelError) as exc:
            log.warning("red-team run %s failed: %s", run_id, exc)
            return RunOutcome(
                "failed",
                cost_usd=live.cost_usd(),
                error_data=job_failure(exc, model_name=f"the model {model_name}"),
            )
        finally:
            await gateway.aclose()
        results = {"behavior_to_enhanced_queries": result.behavior_to_enhanced_queries()}
        summary = result.summary()

        def settle(session: Session) -> None:
            _settle(session, run_id, results, summary)

        return RunOutcome("succeeded", rows_out=len(result.prompts), cost_usd=live.cost_usd(), settle=settle)


def _settle(session: Session, run_id: str, results: dict[str, Any], summary: dict[str, Any]) -> None:
    row = session.get(RedTeamRun, run_id)
    if row is None:  # deleted while it ran
        return
    row.results, row.summary, row.completed_at = results, summary, utcnow()
