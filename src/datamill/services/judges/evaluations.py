"""Judge evaluations: one grading by a judge, synchronous, of one interaction, a run's samples or a dataset.

``POST /api/dataframer/judges/{judge_id}/evaluations/`` takes, as the SDK sends them, ``messages`` (a chat
transcript) or ``input``, and ``output`` (the answer to grade), with ``name``, ``generation_model`` and
``metadata`` shown to the judge as context and ``model_override`` to grade with another model for this call.
datamill adds two targets: ``run_id`` grades the samples of one of the tenant's SUCCEEDED generation runs,
``dataset_id`` the samples of one of its seed datasets (``sample_size`` of them, in order: 1–200,
default 50). Exactly one target is allowed.

An evaluation is paid like a custom evaluation (`JudgeEvaluationService.evaluate`). The call blocks until
every sample is graded (`DimensionJudge`, concurrently) and answers the stored evaluation: ``status``
``succeeded`` with ``verdict`` (for several samples, each dimension's mean, with ``samples`` holding each
sample's verdict or the reason it has none, and ``summary`` the counts), or ``failed`` with ``error`` when
no sample could be graded. A failed evaluation is kept, so it is listed and shows among the tenant's
failures.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import update

from datamill.core.credits import PriceTable
from datamill.core.errors import DataFormatError, Issue, ModelError, ValidationError
from datamill.core.fields import Issues, describe, read_int, read_object, read_str
from datamill.llm.gateway import Gateway
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import CodedError, iso
from datamill.services.generation.credits import reserve
from datamill.services.generation.run_view import run_status, tenant_run
from datamill.services.generation.seed_files import materialised_seeds
from datamill.services.judges.grader import DimensionJudge, Graded, render, summarize
from datamill.services.judges.judges import dimensions_of, page, tenant_judge
from datamill.store import BlobStore, Store
from datamill.store.generation_runs import files_of_run
from datamill.store.ids import new_id
from datamill.store.judges import get_judge_evaluation, list_judge_evaluations
from datamill.store.models import Tenant, utcnow
from datamill.store.red_team_models import JudgeEvaluation
from datamill.store.specs import get_seed_dataset

SDK_FIELDS = ("messages", "input", "output", "name", "generation_model", "metadata", "model_override")
FIELDS = (*SDK_FIELDS, "run_id", "dataset_id", "sample_size")
DEFAULT_SAMPLES = 50
MAX_SAMPLES = 200
#: Largest interaction accepted, in characters of its JSON (422 above, as the contract says).
MAX_INPUT_CHARS = 2_000_000
MAX_RENDERED = 2_000_000
MAX_MESSAGES = 500


class InputTooLargeError(CodedError):
    """An interaction too large to grade (422, code ``input_too_large``)."""

    status = 422


@dataclass(frozen=True)
class Sample:
    """One thing to grade: its name and the ``(label, value)`` pairs the judge sees."""

    name: str
    fields: list[tuple[str, Any]]


@dataclass(frozen=True)
class Prepared:
    """A validated request with its samples read: everything grading needs, and what to record."""

    tenant_id: str
    judge_id: str
    judge_version: int
    rubric: str
    dimensions: list[Any]
    model: str | None
    target: dict[str, Any]
    samples: list[Sample]


def _messages(value: object, issues: Issues) -> list[tuple[str, Any]]:
    if not isinstance(value, list) or not value or len(value) > MAX_MESSAGES:
        issues.add(
            "messages",
            f"must be a list of 1 to {MAX_MESSAGES} {{role, content}} objects, got {describe(value)}",
        )
        return []
    fields: list[tuple[str, Any]] = []
    for index, message in enumerate(value):
        if (
            not isinstance(message, Mapping)
            or not isinstance(message.get("role"), str)
            or "content" not in message
        ):
            issues.add(
                f"messages[{index}]",
                f"must be an object with a string role and a content, got {describe(message)}",
            )
            continue
        text = _content_text(message["content"], f"messages[{index}].content", issues)
        fields.append((f"Message {index + 1} ({message['role']})", text))
    return fields


def _content_text(content: object, field: str, issues: Issues) -> object:
    """A message's content as the judge reads it (an external URL in it is refused).

    Text stays as is; of a list of content blocks, the text blocks' text is read, and every other block
    (an image, a file) is named as not read.
    """
    if not isinstance(content, list):
        return content
    parts: list[str] = []
    for index, block in enumerate(content):
        if isinstance(block, str):
            parts.append(block)
            continue
        if not isinstance(block, Mapping):
            issues.add(
                f"{field}[{index}]", f"must be a string or a content block object, got {describe(block)}"
            )
            continue
        kind = str(block.get("type") or "block")
        if isinstance(block.get("text"), str):
            parts.append(str(block["text"]))
            continue
        links = [v for v in _urls(block) if not v.startswith("data:")]
        if links:
            issues.add(
                f"{field}[{index}]", "external URLs are not fetched: send the file inline as a data: URI"
            )
        else:
            parts.append(f"[{kind}: not read by the judge]")
    return "\n".join(parts)


def _urls(value: object) -> list[str]:
    """Every string under a ``url`` key of a content block (``image_url.url``, ``file.url``...)."""
    if isinstance(value, Mapping):
        found = [str(v) for k, v in value.items() if k == "url" and isinstance(v, str)]
        return found + [u for k, v in value.items() if k != "url" for u in _urls(v)]
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return [value]
    return []


def parse_evaluation(
    body: object, check_model: Callable[[str], str | None] = lambda _name: None
) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """The validated request, and the fields of a single interaction (empty for a run or a dataset).

    `check_model` says why a ``model_override`` is refused (None: it is routed).
    """
    issues = Issues()
    values: Mapping[str, object] = read_object(body, "", FIELDS, issues) or {}
    out: dict[str, Any] = {}
    for key in ("name", "generation_model", "model_override", "run_id", "dataset_id"):
        out[key] = read_str(values.get(key), key, issues, max_length=512)
    if out["model_override"] is not None and (why := check_model(out["model_override"])) is not None:
        issues.add("model_override", why)
    given = [k for k in ("messages", "input", "run_id", "dataset_id") if values.get(k) is not None]
    if len(given) != 1:
        issues.add(
            "input",
            "send exactly one of messages (with output), input (with output), run_id or dataset_id; "
            + (f"got {', '.join(given)}" if given else "got none"),
        )
    fields: list[tuple[str, Any]] = []
    if values.get("messages") is not None or values.get("input") is not None:
        if values.get("output") is None:
            issues.add("output", "is required with messages or input: the answer to grade")
        if out["name"]:
            fields.append(("Interaction name", out["name"]))
        if out["generation_model"]:
            fields.append(("Model that answered", out["generation_model"]))
        if values.get("metadata") is not None:
            fields.append(("Metadata", values["metadata"]))
        if values.get("messages") is not None:
            fields += _messages(values["messages"], issues)
        else:
            fields.append(("Input", values["input"]))
        fields.append(("Output", values.get("output")))
    elif values.get("output") is not None:
        issues.add("output", "grades an interaction: send it with messages or input")
    size = read_int(values.get("sample_size"), "sample_size", issues, minimum=1, maximum=MAX_SAMPLES)
    if size is not None and not (out["run_id"] or out["dataset_id"]):
        issues.add("sample_size", "applies only with run_id or dataset_id")
    out["sample_size"] = size or DEFAULT_SAMPLES
    issues.raise_if_any()
    if len(json.dumps(body, default=str)) > MAX_INPUT_CHARS:
        raise InputTooLargeError(
            f"the interaction is larger than {MAX_INPUT_CHARS} characters of JSON; grade a shorter one",
            "input_too_large",
        )
    return out, fields


def evaluation_wire(row: JudgeEvaluation, *, rendered: bool) -> dict[str, Any]:
    """The SDK's evaluation object plus ``target``, ``samples``, ``summary`` and ``cost_usd``."""
    samples = row.samples
    wire: dict[str, Any] = {
        "id": row.id,
        "judge_id": row.judge_id,
        "judge_version": row.judge_version,
        "model": row.model,
        "status": row.status,
        "error": row.error,
        "source": row.source,
        "latency_ms": row.latency_ms,
        "created_at": iso(row.created_at),
        "verdict": row.verdict,
        "target": row.target,
        "samples": samples,
        "summary": _summary(samples) if samples is not None else None,
        "cost_usd": round(float(row.cost_usd), 8),
    }
    if rendered:
        wire["rendered_text"] = row.rendered_text
    return wire


def _summary(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    graded = [s["verdict"]["overall_score"] for s in samples if s.get("verdict")]
    return {
        "samples": len(samples),
        "graded": len(graded),
        "failed": len(samples) - len(graded),
        "mean_score": round(sum(graded) / len(graded), 4) if graded else None,
        "min_score": min(graded) if graded else None,
        "max_score": max(graded) if graded else None,
    }


class JudgeEvaluationService:
    """Grades with a tenant's judges and keeps the evaluations; see the module docstring.

    Args:
        store, blobs: the metadata database and the files of runs and datasets.
        gateway_factory: the gateway one evaluation's model calls go through (closed after it).
        default_model: the model of a judge that names none.
        check_model: why a ``model_override`` cannot be used (None when the server routes it).
        prices: what an evaluation reserves and is charged (the defaults when None).
    """

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        gateway_factory: Callable[[], Gateway],
        default_model: str | None,
        check_model: Callable[[str], str | None] = lambda _name: None,
        prices: PriceTable | None = None,
    ) -> None:
        self._store, self._blobs = store, blobs
        self._gateway_factory, self._default, self._check = gateway_factory, default_model, check_model
        self._prices = prices or PriceTable()

    async def evaluate(self, tenant_id: str, judge_id: str, body: object) -> dict[str, Any]:
        """Validate, reserve the minimum charge, grade, then record the evaluation and settle its credits.

        The reservation is taken before any model call (402 ``insufficient_credits`` when the balance does
        not cover it) and settled in the transaction that records the evaluation: it is charged
        ``PriceTable.credits(0, judge spend)`` and the rest comes back; a grading that raised gives it all
        back.
        """
        prepared = await asyncio.to_thread(self.prepare, tenant_id, judge_id, body)
        reserved = await asyncio.to_thread(self._reserve, tenant_id)
        try:
            row = await self.grade(prepared)
        except BaseException:
            await asyncio.to_thread(self._give_back, tenant_id, reserved)
            raise
        return await asyncio.to_thread(self.record, row, reserved)

    def _reserve(self, tenant_id: str) -> float:
        with self._store.session() as session:
            return reserve(session, tenant_id, self._prices.minimum_credits, "a judge evaluation")

    def _give_back(self, tenant_id: str, amount: float) -> None:
        with self._store.session() as session:
            _credit(session, tenant_id, amount)

    def prepare(self, tenant_id: str, judge_id: str, body: object) -> Prepared:
        """Validate the request and read its samples (blocking: call it off the event loop)."""
        with self._store.session() as session:
            judge = tenant_judge(session, tenant_id, judge_id)
            request, fields = parse_evaluation(body, self._check)
            override = request["model_override"]
            prepared = Prepared(
                tenant_id,
                judge.id,
                judge.version,
                judge.rubric,
                list(judge.dimensions),
                override or judge.model or self._default,
                {"kind": "input"},
                [Sample("input", fields)] if fields else [],
            )
        if request["run_id"] is not None:
            return self._run_samples(prepared, request["run_id"], request["sample_size"])
        if request["dataset_id"] is not None:
            return self._dataset_samples(prepared, request["dataset_id"], request["sample_size"])
        return prepared

    def _run_samples(self, prepared: Prepared, run_id: str, size: int) -> Prepared:
        with self._store.session() as session:
            run = tenant_run(session, prepared.tenant_id, run_id)
            status = run_status(session, run)
            if status != "SUCCEEDED":
                raise CodedError(
                    f"run {run_id!r} is {status}; its samples can be graded once it SUCCEEDED",
                    "run_not_succeeded",
                    field="run_id",
                )
            files = [
                (f.path, f.blob_key)
                for f in files_of_run(session, run.id)
                if f.path.startswith("sample_") and not f.path.endswith(".metadata.json")
            ][:size]
        samples = []
        for path, key in files:
            with self._blobs.open_read(key) as handle:
                text = handle.read().decode("utf-8", errors="replace")
            samples.append(Sample(PurePosixPath(path).stem, [("Output", text)]))
        return _with(prepared, {"kind": "run", "id": run_id}, samples)

    def _dataset_samples(self, prepared: Prepared, dataset_id: str, size: int) -> Prepared:
        with self._store.session() as session:
            if get_seed_dataset(session, prepared.tenant_id, dataset_id) is None:
                raise NotFoundError("seed dataset", dataset_id)
        try:
            with materialised_seeds(self._store, self._blobs, dataset_id) as seeds:
                picked = seeds.seeds[:size]
        except DataFormatError as exc:
            raise ValidationError(
                [Issue("dataset_id", f"its samples cannot be read: {exc.reason}")]
            ) from None
        samples = [
            Sample(seed.name, [("Sample", seed.fields if seed.fields is not None else seed.text)])
            for seed in picked
        ]
        return _with(prepared, {"kind": "dataset", "id": dataset_id}, samples)

    async def grade(self, prepared: Prepared) -> JudgeEvaluation:
        """Grade every sample; the evaluation row to record (not yet stored)."""
        started = time.perf_counter()
        gateway = self._gateway_factory()
        model_name = prepared.model
        error: str | None = None
        graded: list[Graded] = []
        try:
            model = gateway.model(model_name) if model_name else gateway.role("judge")
            model_name = model.name
            judge = DimensionJudge(model, prepared.rubric, dimensions_of(prepared.dimensions))
            graded = list(await asyncio.gather(*(judge.grade(s.fields) for s in prepared.samples)))
        except ModelError as exc:  # one that fails every sample: no route, no key, no access
            error = f"{type(exc).__name__}: {exc}"
        finally:
            await gateway.aclose()
        single = prepared.target["kind"] == "input"
        verdict = (graded[0].verdict if graded else None) if single else summarize(graded)
        if verdict is None and error is None:
            error = next((g.error for g in graded if g.error), "no sample could be graded")
        samples = None
        if not single:
            samples = [
                {"sample": s.name, "verdict": g.verdict, "error": g.error}
                for s, g in zip(prepared.samples, graded, strict=True)
            ] or [{"sample": s.name, "verdict": None, "error": error} for s in prepared.samples]
        rendered = (
            render(prepared.samples[0].fields) if single else "\n".join(s.name for s in prepared.samples)
        )
        return JudgeEvaluation(
            id=new_id("jeval"),
            tenant_id=prepared.tenant_id,
            judge_id=prepared.judge_id,
            judge_version=prepared.judge_version,
            model=model_name or "",
            status="succeeded" if verdict is not None else "failed",
            error=None if verdict is not None else error,
            source="api",
            latency_ms=round((time.perf_counter() - started) * 1000),
            target=prepared.target,
            verdict=verdict,
            samples=samples,
            rendered_text=rendered[:MAX_RENDERED],
            cost_usd=gateway.usage.total.cost_usd,
            created_at=utcnow(),
        )

    def record(self, row: JudgeEvaluation, reserved: float = 0.0) -> dict[str, Any]:
        """Store a graded evaluation and settle its credits; its wire object (without ``rendered_text``)."""
        with self._store.session() as session:
            session.add(row)
            _credit(session, row.tenant_id, reserved - self._prices.credits(0, float(row.cost_usd)))
            session.flush()
            return evaluation_wire(row, rendered=False)

    def list(self, tenant_id: str, judge_id: str, limit: int | None, offset: int | None) -> dict[str, Any]:
        size, start = page(limit, offset)
        with self._store.session() as session:
            judge = tenant_judge(session, tenant_id, judge_id)
            count, rows = list_judge_evaluations(session, tenant_id, judge.id, size, start)
            return {"count": count, "results": [evaluation_wire(r, rendered=False) for r in rows]}

    def get(self, tenant_id: str, judge_id: str, evaluation_id: str) -> dict[str, Any]:
        with self._store.session() as session:
            judge = tenant_judge(session, tenant_id, judge_id)
            row = get_judge_evaluation(session, tenant_id, judge.id, evaluation_id)
            if row is None:
                raise NotFoundError("judge evaluation", evaluation_id)
            return evaluation_wire(row, rendered=True)


def _credit(session: Any, tenant_id: str, amount: float) -> None:
    """Add `amount` (negative: take it) to the tenant's balance."""
    if amount:
        session.execute(update(Tenant).where(Tenant.id == tenant_id).values(credits=Tenant.credits + amount))


def _with(prepared: Prepared, target: dict[str, Any], samples: list[Sample]) -> Prepared:
    if not samples:
        raise ValidationError(
            [Issue(f"{target['kind']}_id", f"{target['kind']} {target['id']!r} has no samples to grade")]
        )
    return dataclasses.replace(prepared, target=target, samples=samples)
