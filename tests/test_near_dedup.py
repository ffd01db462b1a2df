"""Near-duplicate dedup: MinHash signatures, LSH banding, and the NearDedup step's keep-first behaviour.

Planted pairs are checked against the exact Jaccard similarity of their shingle sets, computed here in plain
Python, so each test knows which side of the threshold a pair is on before it asserts what the step does.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from datamill.steps.base import StepContext
from datamill.steps.dedup import normalize_text
from datamill.steps.minhash import (
    CHAR_NGRAM,
    WORD_NGRAM,
    MinHasher,
    TextBatch,
    candidate_probability,
    canonical_text,
    choose_bands,
    sign_texts,
)
from datamill.steps.near_dedup import NEAR_DUP_THRESHOLD, NearDedup

_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def _vocab(rng: random.Random, size: int = 3000) -> list[str]:
    return ["".join(rng.choices(_SYLLABLES, k=rng.randint(1, 3))) for _ in range(size)]


def _shingles(text: str, words: bool) -> set[str]:
    canon = canonical_text(text)
    if words:
        w = canon.split()
        return {" ".join(w[i : i + WORD_NGRAM]) for i in range(len(w) - WORD_NGRAM + 1)} or {canon}
    return {canon[i : i + CHAR_NGRAM] for i in range(len(canon) - CHAR_NGRAM + 1)} or {canon}


def _jaccard(a: str, b: str, words: bool) -> float:
    x, y = _shingles(a, words), _shingles(b, words)
    return len(x & y) / len(x | y)


def _edited(text: str, rng: random.Random, vocab: list[str], edits: int) -> str:
    words = text.split()
    for pos in rng.sample(range(len(words)), edits):
        words[pos] = rng.choice(vocab)
    return " ".join(words)


def _rows(texts: list[str], start: int = 1) -> list[dict[str, object]]:
    return [{"_row": start + i, "original_prompt": t, "_context": ""} for i, t in enumerate(texts)]


def _run(step: NearDedup, texts: list[str], start: int = 1) -> tuple[list[int], StepContext]:
    ctx = StepContext()
    kept = step.process_batch(_rows(texts, start), ctx)
    return [int(r["_row"]) for r in kept], ctx  # type: ignore[call-overload]


def test_canonical_text_matches_exact_dedup_normalisation():
    for text in [
        "Don't  STOP__now!! ﬁne Straße",
        "Ünïcödé café ÇA va?",
        "日本語のテキスト です",
        "",
        "  a  ",
    ]:
        assert canonical_text(text) == normalize_text(text)


@pytest.mark.parametrize("words", [True, False])
def test_numpy_shingles_equal_plain_python_shingles(words: bool):
    rng = random.Random(3)
    vocab = [*_vocab(rng), "Ünï", "café", "日本語", "Straße", "don't"]
    texts = [
        " ".join(rng.choices(vocab, k=rng.randint(1, 60))) + rng.choice(["", "?", " !!"]) for _ in range(80)
    ]
    batch = TextBatch.of(texts)
    everything = np.arange(len(texts))
    shingles = batch.word_shingles(everything) if words else batch.char_shingles(everything)
    hashed = [set(shingles.hashes[shingles.docs == i].tolist()) for i in range(len(texts))]
    for i in range(0, len(texts), 2):
        expected = _jaccard(texts[i], texts[i + 1], words)
        got = len(hashed[i] & hashed[i + 1]) / len(hashed[i] | hashed[i + 1])
        assert got == pytest.approx(expected)
        assert len(hashed[i]) == len(_shingles(texts[i], words))


def test_minhash_estimates_jaccard_and_is_deterministic():
    rng = random.Random(5)
    vocab = _vocab(rng)
    texts = []
    for _ in range(40):
        base = " ".join(rng.choices(vocab, k=80))
        texts += [base, _edited(base, rng, vocab, rng.randint(0, 12))]
    first = sign_texts(MinHasher(), texts)[1].signatures
    again = sign_texts(MinHasher(), texts)[1].signatures
    assert np.array_equal(first, again)
    errors = [
        (first[i] == first[i + 1]).mean() - _jaccard(texts[i], texts[i + 1], True) for i in range(0, 80, 2)
    ]
    # 128 values: standard error about 0.035; a broken hash family shows as bias or errors of 0.2 and more.
    assert abs(float(np.mean(errors))) < 0.03
    assert max(abs(e) for e in errors) < 0.15


def test_bands_catch_the_threshold_and_few_chance_pairs():
    bands, rows = choose_bands(NEAR_DUP_THRESHOLD, 128)
    assert bands * rows <= 128
    assert candidate_probability(NEAR_DUP_THRESHOLD, bands, rows) >= 0.995
    assert candidate_probability(0.3, bands, rows) < 0.05


def test_short_prompts_with_small_edits_are_removed_and_the_first_kept():
    texts = [
        "How do I reset my password on the company website?",
        "How do I reset my password in the mobile app?",
        "how do I reset my password on the company website??",
        "What is the best way to learn to play the guitar as an adult?",
        "What is the best way to learn to play the guitars as an adult?",
        "What is the best way to learn to play the piano as an adult?",
    ]
    assert _jaccard(texts[0], texts[2], False) == 1.0
    assert _jaccard(texts[3], texts[4], False) >= NEAR_DUP_THRESHOLD
    assert _jaccard(texts[0], texts[1], False) < 0.5
    assert _jaccard(texts[3], texts[5], False) < 0.75
    kept, ctx = _run(NearDedup(("original_prompt", "_context")), texts)
    assert kept == [1, 2, 4, 6]
    reasons = {r.row["_row"]: r.reason for r in ctx.rejected}
    assert reasons[3] == "near duplicate of row 1 (estimated Jaccard 1.00)"
    assert reasons[5].startswith("near duplicate of row 4 (estimated Jaccard 0.")
    assert all(r.step == "near_deduplication" for r in ctx.rejected)


def test_planted_pairs_above_the_threshold_go_and_pairs_near_half_stay():
    rng = random.Random(11)
    vocab = _vocab(rng)
    originals = [" ".join(rng.choices(vocab, k=rng.randint(80, 120))) for _ in range(60)]
    close = [_edited(t, rng, vocab, 1) for t in originals[:30]]
    far = [_edited(t, rng, vocab, len(t.split()) // 8) for t in originals[30:]]
    # Far enough from 0.8 that the estimate (standard error 0.03) cannot put a pair on the wrong side.
    assert all(_jaccard(a, b, True) >= 0.9 for a, b in zip(originals, close, strict=False))
    assert all(0.35 <= _jaccard(a, b, True) <= 0.65 for a, b in zip(originals[30:], far, strict=True))
    kept, ctx = _run(NearDedup(("original_prompt",)), originals + close + far)
    assert kept == list(range(1, 61)) + list(range(91, 121))
    refs = {int(r.row["_row"]): int(r.reason.split("row ")[1].split(" ")[0]) for r in ctx.rejected}
    assert refs == {61 + i: 1 + i for i in range(30)}


def test_rows_are_compared_with_kept_rows_of_earlier_batches():
    rng = random.Random(2)
    vocab = _vocab(rng)
    first = [" ".join(rng.choices(vocab, k=50)) for _ in range(20)]
    second = [_edited(first[7], rng, vocab, 1), " ".join(rng.choices(vocab, k=50))]
    step = NearDedup(("original_prompt",))
    assert _run(step, first)[0] == list(range(1, 21))
    kept, ctx = _run(step, second, start=21)
    assert kept == [22]
    assert ctx.rejected[0].reason.startswith("near duplicate of row 8 ")
    # A third batch repeating the second's kept row, and the first batch's row 1, exactly.
    kept, ctx = _run(step, [second[1], first[0]], start=23)
    assert kept == []
    assert [r.reason.split(" (")[0] for r in ctx.rejected] == [
        "near duplicate of row 22",
        "near duplicate of row 1",
    ]


def test_the_same_input_gives_the_same_decisions():
    rng = random.Random(8)
    vocab = _vocab(rng)
    base = [" ".join(rng.choices(vocab, k=rng.randint(5, 60))) for _ in range(100)]
    texts = base + [_edited(t, rng, vocab, rng.randint(1, 3)) for t in base]
    runs = [_run(NearDedup(("original_prompt",)), texts) for _ in range(2)]
    assert runs[0][0] == runs[1][0]
    assert [r.reason for r in runs[0][1].rejected] == [r.reason for r in runs[1][1].rejected]


def test_texts_either_side_of_the_word_count_cut_are_still_compared():
    rng = random.Random(4)
    vocab = _vocab(rng)
    shorter = " ".join(rng.choices(vocab, k=29))
    longer = shorter + " " + " ".join(rng.choices(vocab, k=4))  # 33 words: word shingles only
    assert _jaccard(shorter, longer, True) >= NEAR_DUP_THRESHOLD
    kept, ctx = _run(NearDedup(("original_prompt",)), [shorter, longer])
    assert kept == [1]
    assert ctx.rejected[0].reason.startswith("near duplicate of row 1 ")


def test_every_key_column_counts_and_empty_text_is_left_alone():
    rng = random.Random(6)
    vocab = _vocab(rng)
    context_a = " ".join(rng.choices(vocab, k=80))
    context_b = " ".join(rng.choices(vocab, k=80))
    rows = [
        {"_row": 1, "original_prompt": "Summarise the report.", "_context": context_a},
        {"_row": 2, "original_prompt": "Summarise the report.", "_context": context_b},
        {"_row": 3, "original_prompt": "Summarise the report!", "_context": context_a},
        {"_row": 4, "original_prompt": "", "_context": None},
        {"_row": 5, "original_prompt": "  ", "_context": ""},
    ]
    ctx = StepContext()
    kept = NearDedup(("original_prompt", "_context")).process_batch(rows, ctx)
    assert [r["_row"] for r in kept] == [1, 2, 4, 5]
    assert ctx.rejected[0].row["_row"] == 3


def test_a_batch_larger_than_one_normalisation_slice_signs_like_small_batches():
    rng = random.Random(9)
    vocab = _vocab(rng)
    texts = [" ".join(rng.choices(vocab, k=rng.randint(3, 400))) for _ in range(2500)]
    assert sum(len(t) for t in texts) > 2_000_000
    hasher = MinHasher()
    whole = sign_texts(hasher, texts)
    parts = [sign_texts(hasher, texts[lo : lo + 100]) for lo in range(0, len(texts), 100)]
    for space in (0, 1):
        members = np.concatenate([p[space].members + 100 * k for k, p in enumerate(parts)])
        assert np.array_equal(whole[space].members, members)
        assert np.array_equal(whole[space].signatures, np.concatenate([p[space].signatures for p in parts]))


def test_a_lone_surrogate_does_not_break_signing():
    texts = ["caf\udce9 au lait, please, with oat milk", "caf\udce9 au lait, please, with oat milk!"]
    kept, ctx = _run(NearDedup(("original_prompt",)), texts)
    assert kept == [1]
    assert ctx.rejected[0].reason == "near duplicate of row 1 (estimated Jaccard 1.00)"


def test_a_dedup_that_forgets_its_batches_drops_its_index():
    from datamill.steps.dedup import ExactDedup

    rows = [
        {"_row": i, "prompt": f"how do I {_SYLLABLES[i % 50]} the {_SYLLABLES[i % 37]} thing {i}"}
        for i in range(500)
    ]
    near, exact = NearDedup(("prompt",)), ExactDedup(("prompt",))
    for step in (near, exact):
        assert len(step.process_batch([dict(r) for r in rows], StepContext())) == 500
        repeats = [dict(r, _row=r["_row"] + 1000) for r in rows[:10]]
        assert step.process_batch([dict(r) for r in repeats], StepContext()) == []  # remembered
        step.forget()
        if step is near:
            assert near.index_nbytes == NearDedup(("prompt",)).index_nbytes  # back to an empty index
        assert len(step.process_batch(repeats, StepContext())) == 10  # forgotten
