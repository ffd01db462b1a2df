"""Walking an app's route table for the tenancy tests: every route under a prefix, its path parameters, and
each way of filling them with one tenant's ids mixed with another's."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from fastapi.routing import iter_route_contexts

_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def api_routes(app: Any, prefix: str) -> list[tuple[str, str]]:
    """``(method, path)`` of every route whose path starts with `prefix` (HEAD and OPTIONS left out)."""
    found = set()
    for route in iter_route_contexts(app.routes):
        path = route.path
        if isinstance(path, str) and path.startswith(prefix):
            found |= {(method, path) for method in (route.methods or ()) if method not in ("HEAD", "OPTIONS")}
    return sorted(found, key=lambda pair: (pair[1], pair[0]))


def path_params(path: str) -> list[str]:
    return [m.group(1) for m in _PARAM.finditer(path)]


def fill(path: str, values: Mapping[str, str]) -> str:
    return _PARAM.sub(lambda m: values[m.group(1)], path)


def id_variants(
    params: list[str], theirs: Mapping[str, str], mine: Mapping[str, str]
) -> list[dict[str, str]]:
    """Each filling of `params` with at least one of `theirs` (the rest `mine`): never all of `mine`."""
    variants = []
    for choice in itertools.product((True, False), repeat=len(params)):
        if any(choice):
            variants.append({p: (theirs if use else mine)[p] for p, use in zip(params, choice, strict=True)})
    return variants
