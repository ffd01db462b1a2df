"""Recipes (which optional pipeline steps run) and the training type of an adaptation.

The training type defaults to `TrainingType.INSTRUCTION_DATASET`.

One rule decides which recipes run, for the API's ``recipes`` object, the command line's ``--recipes`` and
the Python API's ``recipes=`` list alike (`select_recipes`):

- no recipes given: the defaults below;
- any recipe turned on: those recipes are the selection, and every recipe left out is off
  (``{"prompt_rephrase": true}`` rephrases and does not dedup, as ``--recipes rephrase`` does);
- recipes only turned off: those are off and the rest keep their defaults (``{"deduplication": false}``).

The defaults are defined once, as the field defaults of `Recipes`:

====================================  =======  ==================================================
recipe                                default  what it does
====================================  =======  ==================================================
``deduplication``                     on       drop rows whose prompt (and completion) repeat
``prompt_rephrase``                   on       rewrite prompts to be clearer, at the asked length
``reasoning_traces``                  off      add a reasoning trace before each completion
``prompt_metadata_injection``         on       fold context columns into the prompt
====================================  =======  ==================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from enum import StrEnum

from datamill.core.errors import ValidationError
from datamill.core.fields import Issues, join, parse_with, read_bool, read_object, read_str


class TrainingType(StrEnum):
    """What the output rows train: SFT prompt/completion pairs (the default) or DPO chosen/rejected pairs."""

    INSTRUCTION_DATASET = "instruction_dataset"
    PREFERENCE_PAIRS = "preference_pairs"


@dataclass(frozen=True, slots=True)
class Recipes:
    """Which optional steps run; omitted recipes keep these defaults (see the module docstring)."""

    deduplication: bool = True
    prompt_rephrase: bool = True
    reasoning_traces: bool = False
    prompt_metadata_injection: bool = True

    def to_dict(self) -> dict[str, bool]:
        """Every recipe, explicitly on or off."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


RECIPE_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Recipes))

#: Every name a recipe may be chosen by: its API name and the command line's short one.
RECIPE_ALIASES: dict[str, str] = {
    **{name: name for name in RECIPE_NAMES},
    "dedup": "deduplication",
    "rephrase": "prompt_rephrase",
    "reasoning": "reasoning_traces",
    "metadata": "prompt_metadata_injection",
}


def select_recipes(given: Mapping[str, bool]) -> Recipes:
    """The recipes that run when a request sets `given` (recipe name → on/off); see the module docstring."""
    if any(given.values()):
        return Recipes(**{name: bool(given.get(name, False)) for name in RECIPE_NAMES})
    return Recipes(**given)


def recipes_from_names(names: Iterable[str], field: str = "recipe_specification.recipes") -> dict[str, bool]:
    """A list of recipe names (API or short names; ``none`` alone turns all off) → every recipe on or off.

    The named recipes run and the others do not (`select_recipes` on the named recipes turned on).

    Raises:
        ValidationError: an unknown name, with the names to choose from.
    """
    chosen: set[str] = set()
    for raw in names:
        name = raw.strip().lower()
        if not name or name == "none":
            continue
        if name not in RECIPE_ALIASES:
            raise ValidationError.of(
                field, f"unknown recipe {name!r}; choose from {', '.join(sorted(RECIPE_ALIASES))} or 'none'"
            )
        chosen.add(RECIPE_ALIASES[name])
    if not chosen:
        return {recipe: False for recipe in RECIPE_NAMES}
    return select_recipes(dict.fromkeys(chosen, True)).to_dict()


@dataclass(frozen=True, slots=True)
class RecipeSpecification:
    """The ``recipe_specification`` of a run.

    Attributes:
        version: reserved by the wire API; stored and echoed, never interpreted.
        recipes: the recipes, defaults filled in.
    """

    version: str | None = None
    recipes: Recipes = dataclasses.field(default_factory=Recipes)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"recipes": self.recipes.to_dict()}
        if self.version is not None:
            out["version"] = self.version
        return out


def parse_recipe_specification(value: object, field: str = "recipe_specification") -> RecipeSpecification:
    """Validate a wire-shaped recipe specification, or raise a `ValidationError` with every issue."""
    return parse_with(read_recipe_specification, value, field)


def read_recipe_specification(value: object, field: str, issues: Issues) -> RecipeSpecification | None:
    """Reader form of `parse_recipe_specification` (see `core.fields`); null means all defaults."""
    if value is None:
        return RecipeSpecification()
    before = len(issues)
    obj = read_object(value, field, ("version", "recipes"), issues)
    if obj is None:
        return None
    version = read_str(obj.get("version"), join(field, "version"), issues)
    recipes = _read_recipes(obj.get("recipes"), join(field, "recipes"), issues)
    if len(issues) > before or recipes is None:
        return None
    return RecipeSpecification(version=version, recipes=recipes)


def _read_recipes(value: object, field: str, issues: Issues) -> Recipes | None:
    if value is None:
        return Recipes()
    obj = read_object(value, field, RECIPE_NAMES, issues)
    if obj is None:
        return None
    given: dict[str, bool] = {}
    for name in RECIPE_NAMES:
        flag = read_bool(obj.get(name), join(field, name), issues)
        if flag is not None:
            given[name] = flag
    return select_recipes(given)
