"""datamill: an engine that turns raw data into LLM training data.

The Python API lives in :mod:`datamill.services` (``datamill.services.adaptation.adapt.adapt_file``); the
command line is
``datamill`` (:mod:`datamill.cli`).
"""

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # Read on first use: importlib.metadata costs more to import than the whole ``datamill --help``.
    if name != "__version__":
        raise AttributeError(f"module 'datamill' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("datamill")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
        return "0.0.0"
