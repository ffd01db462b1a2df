"""Translate and localize (Adaption API): a new dataset with a sample of rows rewritten per language or place.

The wire layer validates the body with `parse_translate_request` / `parse_localize_request` and writes
the response of the typed `Expansion`. The run works on the source dataset's ``configured_column_mapping``
(set by a raw upload or by an adaptation launch), in prompt mode: its prompt, completion and context are
what gets rewritten. A source with no mapping yet answers 400 (adapt it first, or upload it raw with a
mapping); a chat or universal-prompt mapping answers 400 too.

A launch creates the derived dataset (kind ``translated`` / ``localized``, ``source_dataset_id`` set,
status ``running``) and queues its run (`datamill.services.adaptation.prepare`: the expansion-only
plan). When the run succeeds, the derived dataset holds the source rows plus the new ones, with the
columns ``original_prompt``, ``original_completion``, the source's other columns, and ``language``,
``country``, ``expansion``, ``source_row``; its mapping is
``{prompt: original_prompt, completion: original_completion, context}``, so it can be adapted or expanded
again.

Credits are charged on the rows a run adds (``estimated_new_rows``): ``PriceTable.credits(new_rows,
model spend)``. An idempotency key returns the dataset the first launch created, with 0 credits and 0 new
rows (contract: a replay charges nothing and adds nothing); the key sent again with another source or other
parameters is refused (422, `datamill.services.idempotency`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datamill.core.adapt_request import parse_adapt_request
from datamill.core.errors import ValidationError
from datamill.core.expand_request import ExpandRequest
from datamill.services.adaptation.launch import LaunchKey, RunService, check_runnable, new_run
from datamill.services.adaptation.plans import expansion_body
from datamill.services.adaptation.quote import RunQuoter
from datamill.services.errors import NotFoundError
from datamill.services.settings.runs import RunSettings
from datamill.store import Dataset, utcnow
from datamill.store import runs as repo
from datamill.store.ids import new_id

#: The kind of the derived dataset each endpoint makes.
DERIVED_KINDS = {"translate": "translated", "localize": "localized"}


@dataclass(frozen=True)
class Expansion:
    """What a quote or launch of a translate or localize run answers.

    Attributes:
        dataset_id: the derived dataset (None for an estimate).
        status: its status (None for an estimate).
        credits: the credits reserved for the new rows (0 for a replay: it charges nothing).
        estimate: whether this was only a quote.
        new_rows: the rows the run adds (0 for a replay: it adds nothing).
    """

    dataset_id: str | None
    status: str | None
    credits: float
    estimate: bool
    new_rows: int


class ExpandService:
    """Launches translate and localize runs; see the module docstring."""

    def __init__(self, runs: RunService, quoter: RunQuoter, settings: RunSettings) -> None:
        self._runs, self._quoter, self._settings = runs, quoter, settings

    def expand(self, tenant_id: str, dataset_id: str, kind: str, request: ExpandRequest) -> Expansion:
        """Quote or launch a translate or localize run of the validated `request`.

        Raises:
            ValidationError: a source without a prompt-mode mapping (400).
            NotFoundError: no such dataset for this tenant (404).
            ConflictError: the source is still being read (409).
            InsufficientCreditsError: the balance does not cover the estimate (402).
        """
        source = self._runs.dataset(tenant_id, dataset_id)
        key = LaunchKey.of(request.idempotency_key, "idempotency_key", source.id, request.to_dict())
        if (
            key is not None
            and not request.estimate
            and (replay := self._runs.replay(tenant_id, kind, source.id, key))
        ):
            return Expansion(
                replay.dataset_id, _status_of(self._runs, tenant_id, replay.dataset_id), 0.0, False, 0
            )
        check_runnable(source)
        body = expansion_body(
            expansion_mapping(source), _expansion(request), translation_judge=request.translation_judge
        )
        quote = self._quoter.quote(kind, source.id, parse_adapt_request(body))
        selected = quote.estimate.rows_selected
        new_rows = max(0, request.expansion.expected_output_rows(selected) - selected)
        credits = self._settings.price_table.credits(new_rows, quote.estimate.cost_usd)
        if request.estimate:
            return Expansion(None, None, credits, True, new_rows)
        derived = _derived_dataset(source, kind, request)
        run = new_run(tenant_id, kind, derived.id, source.id, quote, key)
        run.credits_reserved = credits
        derived.run_id = run.id
        launched = self._runs.launch(run, lambda session: session.add(derived), key)
        if launched is not run:  # a concurrent launch with the same key won
            status = _status_of(self._runs, tenant_id, launched.dataset_id)
            return Expansion(launched.dataset_id, status, 0.0, False, 0)
        return Expansion(derived.id, "running", credits, False, new_rows)


def expansion_mapping(source: Dataset) -> dict[str, Any]:
    """The prompt-mode mapping a translate or localize run works on (module docstring).

    Raises:
        ValidationError: the source has no mapping, or one that is not in prompt mode.
    """
    mapping = source.configured_column_mapping or {}
    if not mapping:
        raise ValidationError.of(
            "column_mapping",
            f"dataset {source.id!r} has no column mapping yet, so it is not known which columns to "
            "translate: adapt it first (datasets.adapt with column_mapping), or upload it with "
            "processing_mode='raw' and a column_mapping",
        )
    if not mapping.get("prompt"):
        raise ValidationError.of(
            "column_mapping",
            f"dataset {source.id!r} is mapped in chat or universal-prompt mode; translate and localize "
            "work on a prompt column (and its completion)",
        )
    return {k: mapping[k] for k in ("prompt", "completion", "context") if mapping.get(k)}


def _expansion(request: ExpandRequest) -> dict[str, object]:
    return request.expansion.to_dict()


def _derived_mapping(source_mapping: Mapping[str, Any]) -> dict[str, Any]:
    mapping: dict[str, Any] = {"prompt": "original_prompt"}
    if source_mapping.get("completion"):
        mapping["completion"] = "original_completion"
    if source_mapping.get("context"):
        mapping["context"] = list(source_mapping["context"])
    return mapping


def _derived_dataset(source: Dataset, kind: str, request: ExpandRequest) -> Dataset:
    now = utcnow()
    expansion = request.expansion
    targets = expansion.languages or tuple(f"{p.country}/{p.language}" for p in expansion.pairs)
    what = f"{source.name} with {expansion.sample_rate:g} of its rows {kind}d into {', '.join(targets)}"
    return Dataset(
        id=new_id("ds"),
        tenant_id=source.tenant_id,
        name=f"{source.name} ({kind}d: {', '.join(targets)})",
        description=what,
        kind=DERIVED_KINDS[kind],
        source_dataset_id=source.id,
        status="running",
        ingest_state=repo.DERIVING,
        processing_mode="adapt",
        configured_column_mapping=_derived_mapping(expansion_mapping(source)),
        created_at=now,
        updated_at=now,
    )


def _status_of(runs: RunService, tenant_id: str, dataset_id: str | None) -> str | None:
    if dataset_id is None:  # expansion runs always have one; a generation job never replays here
        return None
    try:
        return runs.dataset(tenant_id, dataset_id).status
    except NotFoundError:  # the derived dataset was deleted since: the replay still names it
        return None
