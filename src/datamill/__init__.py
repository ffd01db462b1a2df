"""datamill: an engine that turns raw data into LLM training data.

The Python API lives in :mod:`datamill.services` (``datamill.services.adaptation.adapt.adapt_file``); the
command line is
``datamill`` (:mod:`datamill.cli`).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("datamill")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0.0.0"

__all__ = ["__version__"]
