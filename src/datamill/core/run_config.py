"""The YAML run config of ``datamill adapt --config FILE``: every CLI option as a field.

A run config is one flat mapping with three kinds of keys:

- the Adaption run/adapt request fields (``column_mapping``, ``recipe_specification``, ``job_specification``,
  ``brand_controls``, ``training_type``, ``language_expansion``, ``estimate``), validated later by
  `parse_adapt_request` exactly as the API validates them (after CLI flags are laid over them);
- where the data comes from and goes: ``input``, ``output``, ``input_format``, ``output_format``, ``model``,
  ``routes``, and your own steps and prompts: ``steps`` (a list of step files, as ``--step``) and
  ``templates`` (a folder of prompt templates, as ``--templates``);
- datamill's run options (`datamill.core.run_options`).

Example::

    input: tickets.csv
    output: tickets.adapted.jsonl
    model: anthropic/claude-haiku-4-5
    column_mapping: {prompt: question, completion: answer, context: [product]}
    recipe_specification: {recipes: {deduplication: true, prompt_rephrase: true, reasoning_traces: true}}
    brand_controls: {length: concise, blueprint: "You are Acme's support assistant."}
    job_specification: {max_rows: 500}
    semantic_dedup: true
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datamill.core.adapt_request import ADAPT_FIELDS
from datamill.core.fields import Issues, read_object, read_str, read_str_list
from datamill.core.run_options import RUN_OPTION_FIELDS, RunOptions, read_run_options

IO_FIELDS = ("input", "output", "input_format", "output_format", "model", "routes", "templates")


@dataclass(frozen=True)
class RunConfig:
    """A parsed run config: the wire request body (not yet validated), the I/O fields and the options."""

    body: dict[str, Any] = field(default_factory=dict)
    io: dict[str, str] = field(default_factory=dict)
    options: RunOptions = field(default_factory=RunOptions)
    #: Step files (``--step``), in order.
    steps: tuple[str, ...] = ()


def parse_run_config(doc: object) -> RunConfig:
    """Check a loaded YAML document's shape and read its I/O fields and options.

    Raises:
        ValidationError: unknown keys, wrong types or out-of-range options, each naming its key.
    """
    if doc is None:
        return RunConfig()
    issues = Issues()
    obj = read_object(doc, "", (*ADAPT_FIELDS, *IO_FIELDS, *RUN_OPTION_FIELDS, "steps"), issues)
    if obj is None:
        issues.raise_if_any()
        return RunConfig()
    io: dict[str, str] = {}
    for key in IO_FIELDS:
        value = read_str(obj.get(key), key, issues)
        if value is not None:
            io[key] = value
    options = read_run_options(obj, "", issues)
    steps = read_str_list(obj.get("steps"), "steps", issues) if obj.get("steps") is not None else ()
    issues.raise_if_any()
    # A config's ``model`` and ``judge_model`` are the command's (its I/O field and run option), which the
    # command line's flags override; they are not sent in the request body.
    own = {*IO_FIELDS, *RUN_OPTION_FIELDS}
    body = {k: v for k, v in obj.items() if k in ADAPT_FIELDS and k not in own}
    return RunConfig(body=body, io=io, options=options, steps=steps or ())


def merge_bodies(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Lay ``override`` (from CLI flags) over ``base`` (from a config): objects merge key by key.

    ``column_mapping`` is replaced whole when the override has one, since mapping modes exclude each other.
    """
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        if key != "column_mapping" and isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_bodies(merged[key], value)
        else:
            merged[key] = value
    return merged
