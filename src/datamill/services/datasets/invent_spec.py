"""The seedless generation spec an invent request becomes, and its samples as dataset rows.

The spec's description is the ``dataset_prompt`` (or, without one, the domains' titles); its rules say what
one sample is (a user's request and the answer to it; for preference pairs a better and a worse answer)
and that it is about the domain and subdomain drawn for it. Two axes vary: ``Domain`` (uniform over the
requested domains) and ``Subdomain`` (uniform over the domain's requested subdomains, conditional on the
domain drawn). Each sample is written as a JSON object with the keys of `FIELDS` for the training type: a
format example with those keys stands in for seed rows, so the generation engine writes structured samples.

`rows_of` turns the delivered samples into rows: ``enhanced_prompt``, ``enhanced_completion`` (or
``chosen``/``rejected`` for preference pairs), ``original_prompt``/``original_completion`` (null: invented
data has no source rows), ``domain`` and ``subdomain`` (codes). A sample missing a field, or with an empty
one, is dropped and counted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datamill.core.spec import Spec, parse_spec
from datamill.pipelines.generate import GeneratedSample
from datamill.services.datasets.invent_catalog import Domain
from datamill.steps.generation.seeds import Seed, SeedSet

FIELDS = {
    "instruction_dataset": ("prompt", "completion"),
    "preference_pairs": ("prompt", "chosen", "rejected"),
}
_EXAMPLE = {
    "prompt": "<a realistic request or question a user would write, on the drawn subdomain>",
    "completion": "<the complete, correct and helpful answer to it>",
    "chosen": "<the complete, correct and helpful answer to it>",
    "rejected": "<a plausible answer to it that is clearly worse: less accurate, complete or helpful>",
}
_GENERAL = "general"


@dataclass(frozen=True)
class InventSpec:
    """The spec, the format example that stands in for seeds, and the drawn values' codes."""

    spec: Spec
    seeds: SeedSet
    codes: dict[str, str]


def invent_spec(record: Mapping[str, Any], catalogue: Sequence[Domain]) -> InventSpec:
    """The spec of a stored invent request (`InventRequest.to_record`)."""
    by_code = {d.code: d for d in catalogue}
    subdomains: dict[str, list[str]] = record["subdomains"]
    domain_values: list[str] = []
    sub_values: dict[str, list[str]] = {}
    codes: dict[str, str] = {}
    for code, subs in subdomains.items():
        domain = by_code.get(code)
        title = domain.title if domain is not None else code
        domain_values.append(title)
        codes[title] = code
        names = []
        for sub in subs or [f"{code}.{_GENERAL}"]:
            sub_title = domain.subdomains.get(sub, sub) if domain is not None else sub
            value = f"{title}: {sub_title}" if sub_title != sub else f"{title}: {_GENERAL}"
            names.append(value)
            codes[value] = sub if subs else ""
        sub_values[title] = names
    every_sub = [v for values in sub_values.values() for v in values]
    fields = FIELDS[record["training_type"]]
    prompt = record.get("dataset_prompt")
    description = prompt or "Training data for an assistant across: " + "; ".join(every_sub)
    rules = [
        "Each sample is one training example for an AI assistant: "
        + (
            "a realistic request a user would write (prompt), a complete, correct and helpful answer "
            "(chosen), and a plausible but clearly worse answer (rejected)"
            if "chosen" in fields
            else "a realistic request a user would write (prompt) and a complete, correct and helpful "
            "answer to it (completion)"
        ),
        "The sample is about the Domain and Subdomain drawn for it.",
        "Samples vary in topic, difficulty, phrasing and length; no two are about the same thing.",
    ]
    doc = {
        "spec": {
            "description": description,
            "requirements": rules,
            "data_property_variations": [
                {
                    "property_name": "Domain",
                    "property_description": "The field the request comes from",
                    "property_values": domain_values,
                },
                {
                    "property_name": "Subdomain",
                    "property_description": "The topic within the domain",
                    "property_values": every_sub,
                    "conditional_distributions": {
                        "Domain": {title: _uniform(values) for title, values in sub_values.items()}
                    },
                },
            ],
        }
    }
    return InventSpec(parse_spec(doc), format_seeds(record["training_type"]), codes)


def format_seeds(training_type: str) -> SeedSet:
    """The format example that stands in for seed rows: the keys of the training type, described."""
    example = {name: _EXAMPLE[name] for name in FIELDS[training_type]}
    return SeedSet((Seed("format", json.dumps(example), example),), "SINGLE_FILE")


def _uniform(values: list[str]) -> dict[str, float]:
    share = 100 / len(values)
    return {value: share for value in values}


def rows_of(
    samples: Sequence[GeneratedSample], training_type: str, codes: Mapping[str, str]
) -> tuple[list[dict[str, Any]], int]:
    """The dataset rows of the samples (module docstring), and how many samples were dropped."""
    fields = FIELDS[training_type]
    rows, dropped = [], 0
    for sample in samples:
        try:
            data = json.loads(sample.text)
        except ValueError:
            data = None
        raw = {f: data.get(f) for f in fields} if isinstance(data, dict) else {}
        values = {f: v.strip() for f, v in raw.items() if isinstance(v, str) and v.strip()}
        if len(values) != len(fields):
            dropped += 1
            continue
        row: dict[str, Any] = {"original_prompt": None, "enhanced_prompt": values["prompt"]}
        if training_type == "preference_pairs":
            row |= {"chosen": values["chosen"], "rejected": values["rejected"]}
        else:
            row |= {"original_completion": None, "enhanced_completion": values["completion"]}
        domain = sample.properties.get("Domain", "")
        row["domain"] = codes.get(domain, domain)
        row["subdomain"] = codes.get(sample.properties.get("Subdomain", "")) or None
        rows.append(row)
    return rows, dropped
