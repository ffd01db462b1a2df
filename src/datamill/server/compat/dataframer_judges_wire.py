"""The wire side of judges in the Dataframer-compatible API: request bodies in, response models out.

A judge's body: ``name`` (required to create), ``description``, ``rubric`` (required to create), ``model``
(a model name the server routes) and ``dimensions``, each ``{name, scoring_model, required, description}``
plus, in a PATCH, the ``dimension_id`` of a dimension it keeps. An evaluation's body: ``messages`` (a chat
transcript) or ``input``, with ``output``, ``name``, ``generation_model``, ``metadata`` and
``model_override`` as the SDK sends them, or datamill's ``run_id`` / ``dataset_id`` with ``sample_size``.
Each bad field is named in one `ValidationError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from datamill.core.fields import (
    Issues,
    describe,
    join,
    read_bool,
    read_int,
    read_list,
    read_object,
    read_str,
)
from datamill.server.compat.dataframer_judges_models import (
    EvaluationSummaryPublic,
    JudgeDimensionPublic,
    JudgeEvaluationDetailPublic,
    JudgeEvaluationPublic,
    JudgePublic,
    JudgeVersionPublic,
    SampleVerdictPublic,
    VerdictPublic,
)
from datamill.services.generation.common import iso
from datamill.services.judges.evaluations import (
    DEFAULT_SAMPLES,
    MAX_INPUT_CHARS,
    MAX_MESSAGES,
    MAX_SAMPLES,
    InputTooLargeError,
    JudgeEvaluationRequest,
    JudgeEvaluationView,
)
from datamill.services.judges.grader import SCORING_MODELS
from datamill.services.judges.judges import (
    MAX_DIMENSIONS,
    MAX_NAME,
    MAX_RUBRIC,
    DimensionDraft,
    JudgeChanges,
    JudgeDraft,
    JudgeView,
)

JUDGE_FIELDS = ("name", "description", "rubric", "model", "dimensions")
DIMENSION_FIELDS = ("dimension_id", "name", "scoring_model", "required", "description")
SDK_EVALUATION_FIELDS = (
    "messages",
    "input",
    "output",
    "name",
    "generation_model",
    "metadata",
    "model_override",
)
EVALUATION_FIELDS = (*SDK_EVALUATION_FIELDS, "run_id", "dataset_id", "sample_size")
_DIMENSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")

#: Why a model name cannot be used (None: the server routes it).
ModelCheck = Callable[[str], str | None]


# --- judge bodies ---


def _dimensions(value: object, issues: Issues) -> tuple[DimensionDraft, ...] | None:
    items = read_list(value, "dimensions", issues)
    if items is None:
        return None
    if not 1 <= len(items) <= MAX_DIMENSIONS:
        issues.add("dimensions", f"must hold 1 to {MAX_DIMENSIONS} dimensions, got {len(items)}")
        return None
    out: list[DimensionDraft] = []
    for index, item in enumerate(items):
        field = join("dimensions", index)
        values = read_object(item, field, DIMENSION_FIELDS, issues)
        if values is None:
            continue
        name = read_str(values.get("name"), join(field, "name"), issues)
        if values.get("name") is None:
            issues.add(join(field, "name"), "is required")
        elif name is not None and not _DIMENSION_NAME.match(name):
            issues.add(join(field, "name"), "must be 1-64 letters, digits, spaces, '_', '.' or '-'")
            name = None
        scoring = values.get("scoring_model", "scale_1_5")
        if scoring not in SCORING_MODELS:
            issues.add(
                join(field, "scoring_model"),
                f"must be one of {', '.join(SCORING_MODELS)}; got {describe(scoring)}",
            )
        required = read_bool(values.get("required"), join(field, "required"), issues)
        about = read_str(values.get("description"), join(field, "description"), issues, max_length=2000)
        if name is not None and any(d.name == name for d in out):
            issues.add(join(field, "name"), f"repeats the dimension {name!r}")
        given_id = values.get("dimension_id")
        if given_id is not None and not isinstance(given_id, str):  # ids are strings: never the judge's
            issues.add(join(field, "dimension_id"), f"is not a dimension of this judge: {describe(given_id)}")
        out.append(
            DimensionDraft(
                name=name or "",
                scoring_model=str(scoring),
                required=required is not False,
                description=about,
                dimension_id=given_id if isinstance(given_id, str) else None,
            )
        )
    return tuple(out)


def _judge_fields(body: object, *, partial: bool, check_model: ModelCheck) -> dict[str, Any]:
    issues = Issues()
    values: Mapping[str, object] = read_object(body, "", JUDGE_FIELDS, issues) or {}
    out: dict[str, Any] = {}
    if not partial:
        for key in ("name", "rubric"):
            if values.get(key) is None:
                issues.add(key, "is required")
    limits = {"name": MAX_NAME, "description": 2000, "rubric": MAX_RUBRIC, "model": 200}
    for key, limit in limits.items():
        if key in values:
            out[key] = read_str(values[key], key, issues, max_length=limit)
            if out[key] is None and key in ("name", "rubric") and values[key] is None:
                issues.add(key, "must be a non-empty string, got null")
    if out.get("model") is not None and (why := check_model(out["model"])) is not None:
        issues.add("model", why)
    if values.get("dimensions") is not None:
        out["dimensions"] = _dimensions(values["dimensions"], issues)
    issues.raise_if_any()
    return out


def parse_judge_create(body: object, check_model: ModelCheck) -> JudgeDraft:
    fields = _judge_fields(body, partial=False, check_model=check_model)
    return JudgeDraft(
        name=fields["name"],
        rubric=fields["rubric"],
        description=fields.get("description"),
        model=fields.get("model"),
        dimensions=fields.get("dimensions"),
    )


def parse_judge_changes(body: object, check_model: ModelCheck) -> JudgeChanges:
    fields = _judge_fields(body, partial=True, check_model=check_model)
    return JudgeChanges(
        name=fields.get("name"),
        description=fields.get("description"),
        rubric=fields.get("rubric"),
        model=fields.get("model"),
        dimensions=fields.get("dimensions"),
    )


# --- evaluation bodies ---


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


def parse_evaluation(body: object, check_model: ModelCheck) -> JudgeEvaluationRequest:
    """The evaluation to make; the interaction's fields are empty for a run or a dataset."""
    issues = Issues()
    values: Mapping[str, object] = read_object(body, "", EVALUATION_FIELDS, issues) or {}
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
    issues.raise_if_any()
    if len(json.dumps(body, default=str)) > MAX_INPUT_CHARS:
        raise InputTooLargeError(
            f"the interaction is larger than {MAX_INPUT_CHARS} characters of JSON; grade a shorter one",
            "input_too_large",
        )
    return JudgeEvaluationRequest(
        interaction=tuple(fields),
        model_override=out["model_override"],
        run_id=out["run_id"],
        dataset_id=out["dataset_id"],
        sample_size=size or DEFAULT_SAMPLES,
    )


# --- answers ---


def judge_public(judge: JudgeView) -> JudgePublic:
    """The SDK's judge object, plus ``rubric``."""
    return JudgePublic(
        id=judge.id,
        name=judge.name,
        description=judge.description,
        project_id=None,
        created_at=iso(judge.created_at),
        rubric=judge.rubric,
        latest_version=JudgeVersionPublic(
            version_number=judge.version,
            model=judge.model,
            created_at=iso(judge.updated_at),
            dimensions=[
                JudgeDimensionPublic.model_validate(
                    {
                        "dimension_id": d.dimension_id,
                        "name": d.name,
                        "required": d.required,
                        "scoring_model": d.scoring_model,
                    }
                )
                for d in judge.dimensions
            ],
        ),
    )


def _verdict(verdict: Mapping[str, Any] | None) -> VerdictPublic | None:
    if verdict is None:
        return None
    return VerdictPublic.model_validate(dict(verdict))


def _evaluation_fields(evaluation: JudgeEvaluationView) -> dict[str, Any]:
    samples = evaluation.samples
    tally = evaluation.tally
    return {
        "id": evaluation.id,
        "judge_id": evaluation.judge_id,
        "judge_version": evaluation.judge_version,
        "model": evaluation.model,
        "status": evaluation.status,
        "error": evaluation.error,
        "source": evaluation.source,
        "latency_ms": evaluation.latency_ms,
        "created_at": iso(evaluation.created_at),
        "verdict": _verdict(evaluation.verdict),
        "target": dict(evaluation.target),
        "samples": None
        if samples is None
        else [SampleVerdictPublic.model_validate(dict(sample)) for sample in samples],
        "summary": None if tally is None else EvaluationSummaryPublic.model_validate(vars(tally)),
        "cost_usd": evaluation.cost_usd,
    }


def evaluation_public(evaluation: JudgeEvaluationView) -> JudgeEvaluationPublic:
    """The SDK's evaluation object plus ``target``, ``samples``, ``summary`` and ``cost_usd``."""
    return JudgeEvaluationPublic(**_evaluation_fields(evaluation))


def evaluation_detail_public(evaluation: JudgeEvaluationView) -> JudgeEvaluationDetailPublic:
    """The evaluation object with the text that was graded."""
    return JudgeEvaluationDetailPublic(
        **_evaluation_fields(evaluation), rendered_text=evaluation.rendered_text
    )
