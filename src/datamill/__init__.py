"""datamill: an engine that turns raw data into LLM training data.

The Python API (docs/python.md): ``datamill.adapt(data, ...)`` adapts a list of dicts, a pyarrow Table, a
pandas DataFrame, a Hugging Face ``datasets.Dataset`` or a file, and returns the same kind with the
rejected rows and the report; ``datamill.estimate(data, ...)`` quotes it first. Each has an ``_async``
twin, as have ``datamill.create_spec``, ``datamill.generate`` and ``datamill.evaluate`` (generation from a
spec). ``datamill.PromptStep`` is a model step of your own (docs/custom-steps.md). The command line is
``datamill`` (:mod:`datamill.cli`).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Adapted",
    "Generated",
    "Progress",
    "PromptStep",
    "__version__",
    "adapt",
    "adapt_async",
    "create_spec",
    "create_spec_async",
    "estimate",
    "estimate_async",
    "evaluate",
    "evaluate_async",
    "generate",
    "generate_async",
    "tqdm_progress",
]

#: Names served by `datamill.python_api`, imported on first use so ``import datamill`` stays cheap.
_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    # Read on first use: importlib.metadata costs more to import than the whole ``datamill --help``.
    if name in _API:
        from datamill import python_api

        return getattr(python_api, name)
    if name != "__version__":
        raise AttributeError(f"module 'datamill' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("datamill")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
        return "0.0.0"


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
