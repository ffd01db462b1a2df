"""The body of ``POST /api/v1/datasets/invent``, checked against the domain catalogue.

``rows`` (required, 1 to `MAX_ROWS`), ``name``, ``training_type`` (``instruction_dataset`` or
``preference_pairs``), ``domains`` and ``subdomains`` (catalogue codes), ``dataset_prompt`` (``prompt`` is
its deprecated alias), ``language_expansion``, ``estimate`` and ``idempotency_key``.

Which domains: ``domains`` when given (authoritative: a subdomain of a domain not listed is refused); else
the parents of ``subdomains``; else the domains ``dataset_prompt`` names, inferred by matching its words to
the catalogue's codes and titles (`infer_domains`). A domain without a listed subdomain is generated across
all of its subdomains. With neither codes nor a prompt, or a prompt that names no domain, the answer is 400
naming ``dataset_prompt`` and asking for explicit codes. ``language_expansion`` has the shape of ``adapt``'s
(translate or localize a ``sample_rate`` of the rows); it applies to instruction data, so with
``preference_pairs`` it answers 400 naming it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datamill.core.errors import Issue, ValidationError
from datamill.core.expansion import LanguageExpansion, parse_language_expansion
from datamill.services.datasets.invent_catalog import Domain

MAX_ROWS = 20_000
TRAINING_TYPES = ("instruction_dataset", "preference_pairs")
FIELDS = (
    "rows",
    "name",
    "training_type",
    "domains",
    "subdomains",
    "dataset_prompt",
    "prompt",
    "language_expansion",
    "estimate",
    "idempotency_key",
)
_WORD = re.compile(r"[a-z0-9]+")
#: Words too common to name a domain by themselves.
_STOP = frozenset(
    {"and", "the", "for", "with", "data", "dataset", "questions", "answers", "about", "general"}
)


@dataclass(frozen=True)
class InventRequest:
    """A checked invent body; ``subdomains`` holds every subdomain generated, by domain, in order."""

    rows: int
    name: str | None
    training_type: str
    domains: tuple[str, ...]
    subdomains: dict[str, tuple[str, ...]]
    dataset_prompt: str | None
    estimate: bool
    idempotency_key: str | None
    language_expansion: LanguageExpansion | None = None

    @property
    def rows_out(self) -> int:
        """The rows expected once the expansion (if any) has added its own."""
        expansion = self.language_expansion
        return expansion.expected_output_rows(self.rows) if expansion is not None else self.rows

    def to_record(self) -> dict[str, Any]:
        """The request as stored with the job."""
        return {
            "rows": self.rows,
            "name": self.name,
            "training_type": self.training_type,
            "domains": list(self.domains),
            "subdomains": {d: list(s) for d, s in self.subdomains.items()},
            "dataset_prompt": self.dataset_prompt,
            "language_expansion": (
                self.language_expansion.to_dict() if self.language_expansion is not None else None
            ),
        }

    @property
    def subdomain_codes(self) -> list[str]:
        return [code for codes in self.subdomains.values() for code in codes]


def parse_invent_request(body: Any, catalogue: Sequence[Domain]) -> InventRequest:
    """The checked body (module docstring). Raises ValidationError naming every bad field."""
    if not isinstance(body, Mapping):
        raise ValidationError.of("body", "must be a JSON object")
    issues = [
        Issue(k, f"is not a field of this request ({', '.join(FIELDS)})") for k in body if k not in FIELDS
    ]
    rows = body.get("rows")
    if (
        isinstance(rows, bool)
        or not isinstance(rows, int | float)
        or not math.isfinite(rows)
        or rows != int(rows)
    ):
        issues.append(Issue("rows", f"is required: a whole number of rows from 1 to {MAX_ROWS}"))
    elif not 1 <= rows <= MAX_ROWS:
        issues.append(Issue("rows", f"must be from 1 to {MAX_ROWS}, got {rows!r}"))
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 512):
        issues.append(Issue("name", "must be a non-empty name of at most 512 characters"))
    training = body.get("training_type") or "instruction_dataset"
    if training not in TRAINING_TYPES:
        issues.append(Issue("training_type", f"must be one of {', '.join(TRAINING_TYPES)}"))
    prompt = body.get("dataset_prompt") if body.get("dataset_prompt") is not None else body.get("prompt")
    field = "dataset_prompt" if body.get("dataset_prompt") is not None else "prompt"
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip() or len(prompt) > 10_000):
        issues.append(Issue(field, "must be a non-empty description of at most 10,000 characters"))
        prompt = None
    expansion = None
    if body.get("language_expansion") is not None:
        try:
            expansion = parse_language_expansion(body["language_expansion"])
        except ValidationError as exc:
            issues += exc.issues
        if training == "preference_pairs":
            issues.append(
                Issue(
                    "language_expansion",
                    "expands instruction data only: invent the preference pairs, then translate them",
                )
            )
    for flag in ("estimate",):
        if body.get(flag) is not None and not isinstance(body.get(flag), bool):
            issues.append(Issue(flag, "must be true or false"))
    key = body.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not key.strip() or len(key) > 255):
        issues.append(Issue("idempotency_key", "must be a non-empty string of at most 255 characters"))
    chosen = _choose(body, catalogue, prompt, issues)
    if issues:
        raise ValidationError(issues)
    assert isinstance(rows, int | float)
    assert chosen is not None
    return InventRequest(
        rows=int(rows),
        name=name.strip() if isinstance(name, str) else None,
        training_type=str(training),
        domains=tuple(chosen),
        subdomains=chosen,
        dataset_prompt=prompt.strip() if isinstance(prompt, str) else None,
        estimate=body.get("estimate") is True,
        idempotency_key=key.strip() if isinstance(key, str) else None,
        language_expansion=expansion,
    )


def _codes(body: Mapping[str, Any], field: str, issues: list[Issue]) -> list[str] | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        issues.append(Issue(field, "must be a list of codes (GET /api/v1/datasets/invent/domains)"))
        return None
    return list(dict.fromkeys(v.strip() for v in value))


def _choose(
    body: Mapping[str, Any], catalogue: Sequence[Domain], prompt: str | None, issues: list[Issue]
) -> dict[str, tuple[str, ...]] | None:
    by_code = {d.code: d for d in catalogue}
    domains, subdomains = _codes(body, "domains", issues), _codes(body, "subdomains", issues)
    for i, code in enumerate(domains or []):
        if code not in by_code:
            issues.append(
                Issue(f"domains[{i}]", f"unknown domain {code!r}: see GET /datasets/invent/domains")
            )
    chosen_subs: dict[str, list[str]] = {}
    for i, code in enumerate(subdomains or []):
        parent = code.partition(".")[0]
        if parent not in by_code or code not in by_code[parent].subdomains:
            issues.append(
                Issue(f"subdomains[{i}]", f"unknown subdomain {code!r}: codes are domain.subdomain")
            )
        elif domains and parent not in domains:
            issues.append(
                Issue(f"subdomains[{i}]", f"{code!r} belongs to {parent!r}, which domains does not list")
            )
        else:
            chosen_subs.setdefault(parent, []).append(code)
    if body.get("domains") is None and body.get("subdomains") is None:
        if prompt is None:
            issues.append(
                Issue("dataset_prompt", "give dataset_prompt, or domains or subdomains (catalogue codes)")
            )
            return None
        domains = infer_domains(prompt, catalogue)
        if not domains:
            issues.append(
                Issue(
                    "dataset_prompt",
                    "no domain of the catalogue could be inferred from it: give domains or subdomains "
                    "(GET /api/v1/datasets/invent/domains lists the codes)",
                )
            )
            return None
    order = domains if domains else list(chosen_subs)
    if not order and not issues:
        issues.append(Issue("subdomains", "name at least one subdomain, or give domains"))
    out: dict[str, tuple[str, ...]] = {}
    for code in order:
        if code in by_code:
            out[code] = tuple(chosen_subs.get(code) or by_code[code].subdomains)
    return out


def infer_domains(prompt: str, catalogue: Sequence[Domain]) -> list[str]:
    """The domains whose code, title or a subdomain's title shares a significant word with `prompt`."""
    words = _words(prompt)
    found = []
    for domain in catalogue:
        names = [domain.code.replace("_", " "), domain.title, *domain.subdomains.values()]
        if any(_words(name) & words for name in names):
            found.append(domain.code)
    return found


def _words(text: str) -> set[str]:
    out = set()
    for word in _WORD.findall(text.lower()):
        if len(word) >= 3 and word not in _STOP:
            out.add(word[:-1] if word.endswith("s") and len(word) > 4 else word)
    return out
