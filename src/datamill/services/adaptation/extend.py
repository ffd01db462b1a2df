"""Extend trajectories (Adaption API): a new dataset with the user's next turn of each conversation.

``POST /api/v1/datasets/{id}/extend-trajectories`` reads the source dataset's own rows with one of two
mappings: ``{chat}`` (a column of ``{"role", "content"}`` turns ending on the assistant's reply) or
``{prompt, completion}`` (the conversation up to the user's last turn, as a turn list or plain text, and
the final reply). ``context``, ``universal_prompt``, ``image``, ``chosen`` and ``rejected`` are refused,
naming the field. ``column_mapping`` may be left out only for an estimate, which then uses the dataset's
configured mapping. ``job_specification`` takes ``max_rows`` and ``idempotency_key``.

A launch creates the derived dataset (kind ``extended``, ``source_dataset_id`` set, status ``running``)
and queues a run of kind ``extend``: the adaptation pipeline over the mapping with every recipe off and
one row step, `datamill.steps.extend_trajectory.ExtendTrajectory`, executed by the worker through the
model gateway. When it succeeds the new dataset holds each row's mapped conversation (``original_prompt``,
``original_completion``, ``original_chat`` in chat mode), the source's other columns and
``extended_prompt``; rows whose conversation cannot be extended are rejected with the reason
(``GET /api/v1/datasets/{new id}/rejected``). Its mapping is ``{prompt: original_prompt, completion:
original_completion}``.

Credits are quoted on the rows selected and charged on the messages written, as `PriceTable.credits` prices
them with the model spend; the estimate is reserved at launch as for every run. An idempotency key replays
the first launch: its ``run_id`` and ``dataset_id``, with zero estimates (the replay starts and charges
nothing); the key sent again with another source or other parameters is refused (422,
`datamill.services.idempotency`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datamill.core.adapt_request import AdaptRequest, parse_adapt_request
from datamill.core.errors import Issue, ValidationError
from datamill.services.adaptation.launch import LaunchKey, RunService, check_runnable, new_run
from datamill.services.adaptation.plans import EXTEND, NO_RECIPES
from datamill.services.adaptation.quote import RunQuoter
from datamill.services.settings.runs import RunSettings
from datamill.store import Dataset, utcnow
from datamill.store import runs as repo
from datamill.store.ids import new_id

FIELDS = ("column_mapping", "job_specification", "estimate")
_MAPPING_KEYS = ("chat", "prompt", "completion")
_REFUSED = {
    "context": "context columns are not used to extend a conversation",
    "universal_prompt": "a universal prompt is not a conversation",
    "image": "image conversations cannot be extended",
    "chosen": "preference columns are not a conversation",
    "rejected": "preference columns are not a conversation",
}
DERIVED_MAPPING = {"prompt": "original_prompt", "completion": "original_completion"}


@dataclass(frozen=True)
class Extension:
    """What a quote or launch answers (the run fields of the run/adapt response, plus the new dataset)."""

    run_id: str | None
    dataset_id: str | None
    estimate: bool
    minutes: float
    credits: float


def parse_extend_request(body: Any) -> AdaptRequest:
    """The body as the run request it is (module docstring); ValidationError naming every bad field."""
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise ValidationError.of("body", "must be a JSON object")
    issues = [Issue(key, f"is not a field of this request (fields: {', '.join(FIELDS)})") for key in body]
    issues = [issue for issue in issues if issue.field not in FIELDS]
    mapping = body.get("column_mapping")
    if mapping is not None:
        if not isinstance(mapping, Mapping):
            issues.append(Issue("column_mapping", "must be an object: {chat} or {prompt, completion}"))
        else:
            issues += _mapping_issues(mapping)
    if issues:
        raise ValidationError(issues)
    adapt_body: dict[str, Any] = {"recipe_specification": NO_RECIPES}
    adapt_body |= {k: body[k] for k in FIELDS if k in body and body[k] is not None}
    return parse_adapt_request(adapt_body)


def _mapping_issues(mapping: Mapping[str, Any]) -> list[Issue]:
    issues = [
        Issue(f"column_mapping.{key}", f"{why}: map chat, or prompt with completion")
        for key, why in _REFUSED.items()
        if mapping.get(key) not in (None, [], "")
    ]
    given = {k for k in _MAPPING_KEYS if mapping.get(k) not in (None, "")}
    if "chat" in given and given != {"chat"}:
        issues.append(Issue("column_mapping.chat", "give chat alone, or prompt with completion"))
    elif "chat" not in given and given != {"prompt", "completion"}:
        missing = "completion" if "prompt" in given else "prompt"
        issues.append(
            Issue(
                f"column_mapping.{missing}",
                "is required: map chat (a conversation ending on the assistant's reply), "
                "or prompt with completion",
            )
        )
    return issues


class ExtendService:
    """Quotes and launches extend runs; see the module docstring."""

    def __init__(self, runs: RunService, quoter: RunQuoter, settings: RunSettings) -> None:
        self._runs, self._quoter, self._settings = runs, quoter, settings

    def extend(self, tenant_id: str, dataset_id: str, request: AdaptRequest) -> Extension:
        """Quote or launch an extend run of the validated `request` (`parse_extend_request`).

        Raises:
            ValidationError: a mapping this dataset cannot serve, or none to quote with (400).
            NotFoundError: no such dataset for this tenant (404).
            ConflictError: the source is still being read (409).
            InsufficientCreditsError: the balance does not cover the estimate (402).
        """
        source = self._runs.dataset(tenant_id, dataset_id)
        key = LaunchKey.of(
            request.job.idempotency_key, "job_specification.idempotency_key", source.id, request.to_dict()
        )
        if (
            key is not None
            and not request.estimate
            and (replay := self._runs.replay(tenant_id, EXTEND, source.id, key))
        ):
            return Extension(replay.id, replay.dataset_id, False, 0.0, 0.0)
        check_runnable(source)
        if request.column_mapping is None:
            request = _with_configured_mapping(request, source)
        quote = self._quoter.quote(EXTEND, source.id, request)
        estimate = quote.estimate
        credits = self._settings.price_table.credits(estimate.rows_selected, estimate.cost_usd)
        if request.estimate:
            return Extension(None, None, True, estimate.minutes, credits)
        derived = _derived_dataset(source)
        run = new_run(tenant_id, EXTEND, derived.id, source.id, quote, key)
        run.credits_reserved = credits
        derived.run_id = run.id
        launched = self._runs.launch(run, lambda session: session.add(derived), key)
        if launched is not run:  # a concurrent launch with the same key won
            return Extension(launched.id, launched.dataset_id, False, 0.0, 0.0)
        return Extension(run.id, derived.id, False, estimate.minutes, credits)


def _with_configured_mapping(request: AdaptRequest, source: Dataset) -> AdaptRequest:
    configured = source.configured_column_mapping or {}
    mapping = {k: configured[k] for k in _MAPPING_KEYS if configured.get(k)}
    if not mapping:
        raise ValidationError.of(
            "column_mapping",
            f"dataset {source.id!r} has no column mapping yet: give column_mapping ({{chat}} or "
            f"{{prompt, completion}}; columns: {', '.join(map(str, source.columns or []))})",
        )
    body = {**request.to_dict(), "column_mapping": mapping, "estimate": True}
    return parse_extend_request({k: body[k] for k in FIELDS if k in body})


def _derived_dataset(source: Dataset) -> Dataset:
    now = utcnow()
    return Dataset(
        id=new_id("ds"),
        tenant_id=source.tenant_id,
        name=f"{source.name} (extended trajectories)",
        description=f"{source.name} with the user's next turn of each conversation in extended_prompt",
        kind="extended",
        source_dataset_id=source.id,
        status="running",
        ingest_state=repo.DERIVING,
        processing_mode="adapt",
        configured_column_mapping=dict(DERIVED_MAPPING),
        created_at=now,
        updated_at=now,
    )
