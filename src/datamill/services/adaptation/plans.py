"""The kinds of server runs and the request of a translate or localize run.

An adapt run adapts a dataset in place. A translate or localize run is the adaptation pipeline over the
source dataset's configured mapping with every recipe off and language expansion on
(`datamill.services.adaptation.prepare` keeps only its expansion row step).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datamill.core.recipes import RECIPE_NAMES

#: Run kinds: adapt a dataset in place, or make a new one with translated or localized rows.
ADAPT = "adapt"
EXPANSIONS = ("translate", "localize")
#: A run that writes the user's next turn of each conversation into a new dataset (extend-trajectories).
EXTEND = "extend"
#: Every recipe off: an expansion run only translates or localizes.
NO_RECIPES = {"recipes": dict.fromkeys(RECIPE_NAMES, False)}


def expansion_body(
    mapping: Mapping[str, Any], expansion: Mapping[str, Any], *, translation_judge: bool = False
) -> dict[str, Any]:
    """The run/adapt-shaped request of a translate or localize run (with the detail judge when asked)."""
    body: dict[str, Any] = {
        "column_mapping": dict(mapping),
        "recipe_specification": NO_RECIPES,
        "language_expansion": dict(expansion),
    }
    if translation_judge:
        body["translation_judge"] = True
    return body


def input_cache_dir(data_dir: Path) -> Path:
    """Where the combined input files of multi-file datasets are kept."""
    return data_dir / "inputs"
