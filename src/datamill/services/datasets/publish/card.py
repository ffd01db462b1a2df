"""The dataset card published with a dataset: ``README.md`` with Hugging Face metadata and what made the data.

The YAML front matter names the data files as the ``train`` split (so the Hub's viewer and
``datasets.load_dataset`` find them) and tags the dataset ``datamill``. The body lists the columns, the
pipeline that produced the rows (the run's request, or how a raw or combined dataset was made), the quality
evaluation when the run has one, and the custom evaluations that succeeded.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pyarrow as pa
import yaml

from datamill.services.datasets.custom_evals import CustomEvalView
from datamill.services.datasets.output import DatasetRows

_RUBRIC_PREVIEW = 80


@dataclass(frozen=True)
class CardInput:
    """Everything a card shows."""

    rows: DatasetRows
    schema: pa.Schema
    data_files: Sequence[str]
    custom_evals: Sequence[CustomEvalView] = field(default_factory=tuple)


def _datamill_version() -> str:
    try:
        return version("datamill")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def dataset_card(card: CardInput, *, now: dt.datetime | None = None) -> str:
    """The ``README.md`` text of a published dataset."""
    view = card.rows.dataset
    front = {
        "pretty_name": view.name,
        "tags": ["datamill"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train*"}]}],
    }
    when = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"---\n{yaml.safe_dump(front, sort_keys=False, allow_unicode=True)}---",
        f"# {view.name}",
        f"Published by datamill {_datamill_version()} from dataset `{view.id}` on {when}.",
        _data_section(card),
        "## How it was made\n\n```json\n"
        + json.dumps(card.rows.pipeline(), indent=2, ensure_ascii=False, default=str)
        + "\n```",
        _evaluation_section(card.rows.run.evaluation if card.rows.run else None),
    ]
    if done := [e for e in card.custom_evals if e.status == "succeeded"]:
        parts.append(_custom_section(done))
    return "\n\n".join(parts) + "\n"


def _data_section(card: CardInput) -> str:
    files = ", ".join(f"`{name}`" for name in card.data_files)
    lines = [f"## Data\n\n{card.rows.row_count} rows in {files}.\n", "| column | type |", "|---|---|"]
    lines += [f"| {_cell(f.name)} | {f.type} |" for f in card.schema]
    return "\n".join(lines)


def _evaluation_section(quality: dict[str, Any] | None) -> str:
    if not quality:
        return "## Evaluation\n\nNo quality evaluation was run on this output."
    keys = ("grade_before", "grade_after", "score_before", "score_after", "improvement_percent")
    lines = ["## Evaluation\n", "| measure | value |", "|---|---|"]
    lines += [f"| {key} | {quality[key]} |" for key in keys if quality.get(key) is not None]
    return "\n".join(lines)


def _custom_section(evals: Sequence[CustomEvalView]) -> str:
    lines = [
        "## Custom evaluations\n",
        "Scores 0–10 from an LLM judge with each rubric, on a sample of rows.\n",
        "| name | rubric | before | after | change % | rows |",
        "|---|---|---|---|---|---|",
    ]
    for e in evals:
        rubric = (
            e.judge_prompt
            if len(e.judge_prompt) <= _RUBRIC_PREVIEW
            else e.judge_prompt[:_RUBRIC_PREVIEW] + "…"
        )
        cells = (e.name or e.id, rubric, e.score_before, e.score_after, e.improvement_percent, e.scored_rows)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    """A value fit for a Markdown table cell."""
    text = "–" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")
