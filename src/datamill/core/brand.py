"""Brand controls: the length, safety review, grounding and style of the completions a run writes.

``length`` sets a target size for each completion (see `Length.token_range`). A non-empty
``safety_categories`` list turns on safety scoring against all five categories and adds the
``prompt_safety_issues`` / ``response_safety_issues`` columns; rows are flagged, never removed by it.
``hallucination_mitigation`` grounds answers in retrieved sources first. ``blueprint`` is a system prompt
describing the voice and style, at most `MAX_BLUEPRINT_CHARS` characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from datamill.core.fields import (
    Issues,
    join,
    parse_with,
    read_bool,
    read_enum,
    read_list,
    read_object,
    read_str,
)

#: The longest blueprint accepted, in characters (about 5,000 tokens: room for a style guide, not a corpus).
MAX_BLUEPRINT_CHARS = 20_000

BRAND_FIELDS = ("length", "safety_categories", "hallucination_mitigation", "blueprint")


class Length(StrEnum):
    """Target completion length; each has a documented token range (`token_range`)."""

    MINIMAL = "minimal"
    CONCISE = "concise"
    DETAILED = "detailed"
    EXTENSIVE = "extensive"

    @property
    def token_range(self) -> tuple[int, int]:
        """The (lowest, highest) number of completion tokens this length aims for."""
        return _TOKEN_RANGES[self]


_TOKEN_RANGES: dict[Length, tuple[int, int]] = {
    Length.MINIMAL: (1, 40),
    Length.CONCISE: (40, 150),
    Length.DETAILED: (150, 400),
    Length.EXTENSIVE: (400, 1200),
}


class SafetyCategory(StrEnum):
    """The categories the safety review scores."""

    VIOLENCE = "violence"
    SELF_HARM = "self_harm"
    HARASSMENT = "harassment"
    HATE = "hate"
    SEXUAL = "sexual"


@dataclass(frozen=True, slots=True)
class BrandControls:
    """The validated ``brand_controls`` of a run; every field is optional on the wire.

    Attributes:
        length: target completion length, or None to keep each completion's natural length.
        safety_categories: the categories asked for; non-empty turns the safety review on.
        hallucination_mitigation: ground completions in retrieved sources first.
        blueprint: a system prompt for voice and style, or None.
    """

    length: Length | None = None
    safety_categories: tuple[SafetyCategory, ...] = ()
    hallucination_mitigation: bool = False
    blueprint: str | None = None

    @property
    def safety_review(self) -> bool:
        """Whether the safety review runs (it always scores all five categories)."""
        return bool(self.safety_categories)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.length is not None:
            out["length"] = self.length.value
        out["safety_categories"] = [c.value for c in self.safety_categories]
        out["hallucination_mitigation"] = self.hallucination_mitigation
        if self.blueprint is not None:
            out["blueprint"] = self.blueprint
        return out


def parse_brand_controls(value: object, field: str = "brand_controls") -> BrandControls:
    """Validate wire-shaped brand controls, or raise a `ValidationError` with every issue."""
    return parse_with(read_brand_controls, value, field)


def read_brand_controls(value: object, field: str, issues: Issues) -> BrandControls | None:
    """Reader form of `parse_brand_controls` (see `core.fields`); null means all defaults."""
    if value is None:
        return BrandControls()
    before = len(issues)
    obj = read_object(value, field, BRAND_FIELDS, issues)
    if obj is None:
        return None
    length = read_enum(obj.get("length"), join(field, "length"), issues, Length)
    categories = _read_categories(obj.get("safety_categories"), join(field, "safety_categories"), issues)
    grounding = read_bool(
        obj.get("hallucination_mitigation"), join(field, "hallucination_mitigation"), issues
    )
    blueprint = read_str(
        obj.get("blueprint"), join(field, "blueprint"), issues, max_length=MAX_BLUEPRINT_CHARS
    )
    if len(issues) > before:
        return None
    return BrandControls(length, categories, bool(grounding), blueprint)


def _read_categories(value: object, field: str, issues: Issues) -> tuple[SafetyCategory, ...]:
    items = read_list(value, field, issues) or []
    found: list[SafetyCategory] = []
    for i, item in enumerate(items):
        path = join(field, i)
        if item is None:
            issues.add(path, f"must be one of {', '.join(SafetyCategory)}; got null")
        category = read_enum(item, path, issues, SafetyCategory)
        if category is None:
            continue
        if category in found:
            issues.add(path, f"safety category {category.value!r} is listed twice")
        else:
            found.append(category)
    return tuple(found)
