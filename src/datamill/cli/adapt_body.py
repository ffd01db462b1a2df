"""From ``datamill adapt`` flags to the run/adapt request body and the run options.

The body has the Adaption wire shape, so the CLI, the Python API and the server validate it the same way
(`datamill.core.parse_adapt_request`); a ``--config`` file supplies the same fields and flags override them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from datamill.core.errors import ValidationError
from datamill.core.recipes import recipes_from_names
from datamill.core.run_options import RunOptions

LENGTHS = ("minimal", "concise", "detailed", "extensive")
#: Flags that become run options (click's names → RunOptions fields).
OPTION_FLAGS = (
    "seed",
    "batch_size",
    "near_dedup",
    "semantic_dedup",
    "rephrase_check",
    "translation_judge",
    "grounding_top_k",
    "grounding_min_relevance",
    "grounding_text_column",
    "grounding_source_column",
    "evaluate",
    "eval_sample_size",
    "judge_model",
    "remove_unsafe_rows",
    "preference_mode",
    "preference_candidates",
    "preference_min_margin",
)


def parse_recipes(value: str | None) -> dict[str, bool] | None:
    """``--recipes dedup,rephrase`` → every known recipe set on or off; ``none`` turns all off."""
    if value is None:
        return None
    return recipes_from_names(value.split(","))


def body_from_flags(flags: dict[str, Any]) -> dict[str, Any]:
    """The request fields the flags set (only those given, so a config's fields show through)."""
    body: dict[str, Any] = {}
    mapping = _mapping(flags)
    if mapping:
        body["column_mapping"] = mapping
    recipes = parse_recipes(flags.get("recipes"))
    if recipes is not None:
        body["recipe_specification"] = {"recipes": recipes}
    brand = _brand(flags)
    if brand:
        body["brand_controls"] = brand
    if flags.get("max_rows") is not None:
        body["job_specification"] = {"max_rows": flags["max_rows"]}
    if flags.get("training_type"):
        body["training_type"] = flags["training_type"]
    expansion = _expansion(flags)
    if expansion is not None:
        body["language_expansion"] = expansion
    return body


def options_from_flags(base: RunOptions, flags: dict[str, Any]) -> RunOptions:
    """``base`` (a config's options) with every option flag that was given laid over it."""
    given = {name: flags[name] for name in OPTION_FLAGS if flags.get(name) is not None}
    if flags.get("preference_models"):
        given["preference_models"] = tuple(flags["preference_models"])
    if flags.get("grounding_docs"):
        given["grounding_docs"] = tuple(str(p) for p in flags["grounding_docs"])
    if flags.get("grounding_index") is not None:
        given["grounding_index"] = str(flags["grounding_index"])
    return replace(base, **given)


def _mapping(flags: dict[str, Any]) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for key in ("prompt", "completion", "chat", "universal_prompt", "image"):
        if flags.get(key) is not None:
            mapping[key] = flags[key]
    if flags.get("context"):
        mapping["context"] = list(flags["context"])
    return mapping


def _brand(flags: dict[str, Any]) -> dict[str, Any]:
    brand: dict[str, Any] = {}
    if flags.get("blueprint") is not None:
        brand["blueprint"] = read_blueprint(flags["blueprint"])
    if flags.get("length") is not None:
        brand["length"] = flags["length"]
    if flags.get("safety"):
        brand["safety_categories"] = [c.strip() for c in flags["safety"].split(",") if c.strip()]
    if flags.get("hallucination_mitigation") or flags.get("grounding_docs"):
        brand["hallucination_mitigation"] = True
    return brand


def _expansion(flags: dict[str, Any]) -> dict[str, Any] | None:
    translate, localize, rate = flags.get("translate"), flags.get("localize"), flags.get("sample_rate")
    if translate is None and localize is None:
        if rate is not None:
            raise ValidationError.of(
                "language_expansion.sample_rate", "--sample-rate needs --translate or --localize"
            )
        return None
    if translate is not None and localize is not None:
        raise ValidationError.of("language_expansion", "give --translate or --localize, not both")
    expansion: dict[str, Any] = {"sample_rate": rate}
    if translate is not None:
        expansion.update(type="translate", languages=[c.strip() for c in translate.split(",") if c.strip()])
    else:
        expansion.update(type="localize", pairs=[_pair(p) for p in str(localize).split(",") if p.strip()])
    return expansion


def _pair(text: str) -> dict[str, str]:
    country, sep, language = text.strip().partition(":")
    if not sep:
        raise ValidationError.of("language_expansion.pairs", f"{text!r} is not COUNTRY:language (e.g. MX:es)")
    return {"country": country, "language": language}


def read_blueprint(value: str) -> str:
    """``@path`` reads the blueprint from a file; anything else is the blueprint text."""
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise ValidationError.of("brand_controls.blueprint", f"blueprint file {path} does not exist")
        return path.read_text(encoding="utf-8")
    return value
