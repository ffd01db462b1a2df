"""A run's plan as a value: what a launch decides once, stores with the run, and the worker reuses.

`RunPlan` holds the decisions that make a run what it is: its kind (adapt, translate, localize), the
validated request (mapping filled in), the model and the judge, the run options, how many rows the input has
and whether multimodal pricing applies. The server stores it with the run (the run's ``request``,
``options``, ``model`` and ``estimate`` columns) and the worker reads it back with `RunPlan.of_record`, so it
neither counts the input again nor re-estimates it. `run_fingerprint` is the one identity of a run, for
resuming its checkpoint, on the command line and on the server alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datamill.core.adapt_request import AdaptRequest, parse_adapt_request
from datamill.core.run_options import RunOptions


@dataclass(frozen=True)
class RunPlan:
    """The decisions of one run; see the module docstring.

    Attributes:
        kind: ``adapt``, ``translate`` or ``localize``.
        request: the validated request the run executes (its mapping filled in, ``estimate`` off).
        model: the public name of the model the steps call.
        judge: the public name of the judges' model (pairs, safety, evaluation).
        options: the run options.
        total_rows: rows in the input (what ``max_rows`` samples from).
        multimodal: whether the run is priced as multimodal (an image column).
    """

    kind: str
    request: AdaptRequest
    model: str
    judge: str
    options: RunOptions
    total_rows: int
    multimodal: bool = False

    def options_record(self) -> dict[str, Any]:
        """The options as stored with a run (JSON: lists for tuples)."""
        return options_to_dict(self.options)

    @classmethod
    def of_record(
        cls,
        kind: str,
        request: Mapping[str, Any],
        model: str,
        options: Mapping[str, Any],
        estimate: Mapping[str, Any],
    ) -> RunPlan:
        """The plan stored with a run: its request, model, options and estimate columns."""
        run_options = options_from_dict(options)
        return cls(
            kind=kind,
            request=parse_adapt_request(request),
            model=model,
            judge=run_options.judge_model or model,
            options=run_options,
            total_rows=int(estimate["rows_in"]),
            multimodal=bool(estimate.get("multimodal_pricing_applied", False)),
        )


def options_to_dict(options: RunOptions) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()}


def options_from_dict(values: Mapping[str, Any]) -> RunOptions:
    known = {f.name for f in dataclasses.fields(RunOptions)}
    kept: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known
    }
    return RunOptions(**kept)


def file_identity(path: Path, input_format: str | None) -> dict[str, Any]:
    """What identifies an input file on this machine: its resolved path, size, modification time, format."""
    stat = path.stat()
    return {
        "input": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "input_format": input_format,
    }


def run_identity(run_id: str) -> dict[str, Any]:
    """What identifies a server run's input: the run (a dataset's files never change once read)."""
    return {"run": run_id}


def run_fingerprint(
    source: Mapping[str, Any],
    plan: RunPlan,
    documents: str | None,
    *,
    custom: Mapping[str, str | None] | None = None,
) -> str:
    """A run's identity for resuming: its input, kind, request, models, options and grounding documents.

    `custom` adds the digests of a run's own steps and prompt templates (command line and Python API).
    """
    identity = {
        "source": dict(source),
        "kind": plan.kind,
        "request": plan.request.to_dict(),
        "model": plan.model,
        "judge": plan.judge,
        "options": options_to_dict(plan.options),
        "documents": documents,
    }
    if custom and any(custom.values()):
        identity["custom"] = dict(custom)
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
