r"""MinHash signatures of texts, computed for a whole batch at once with numpy.

A text is compared in its normalised form (`canonical_text`: NFKC, case folding, words of ``\w`` characters
joined by single spaces, the same as exact dedup's), cut into *shingles*, overlapping n-grams of words or of
characters:

- **Word n-grams** (`WORD_NGRAM` = 3 words) for texts of at least `WORD_SPACE_MIN_WORDS` words. Three words
  keep word order (a 3-gram rarely repeats by chance) while one changed word touches only three shingles, so
  a 30-word text with one word changed still scores about 0.8. Web-scale dedup uses 5-grams or longer on
  long documents, where one edit is a small fraction; prompts are short.
- **Character n-grams** (`CHAR_NGRAM` = 5 characters, the single spaces between words included) for texts
  under `CHAR_SPACE_MAX_WORDS` words, which is most prompts: a ten-word prompt has only eight word 3-grams,
  so one edit would drop its similarity below 0.5, while its ~50 character 5-grams degrade gently. A text
  shorter than one n-gram is a single shingle.

Texts of 24 to 31 words get both kinds and are compared in both spaces. Two texts whose Jaccard similarity
reaches 0.8 have shingle counts within a ratio of 0.8, so any such pair shares a space; with a single cut, a
31-word text and its 33-word edit would be compared in none.

Shingle hashes are 32-bit: a word's hash is the polynomial ``sum(c_k * P**k) mod 2**64`` of its code points
(taken from prefix sums over the whole batch, shifted by the inverse power of its start), an n-gram combines
its units' mixed hashes polynomially, `fmix64` (MurmurHash3's finaliser) mixes the bits, and the top 32 are
kept. Normalisation, word boundaries and hashing all run on the batch's code points at once: no Python work
per word.

The `NUM_PERM` = 128 hash functions are ``h_i(x) = (a_i·x + b_i mod 2**64) >> 32`` with random 64-bit odd
``a_i`` and ``b_i`` from a fixed seed: the multiply-add-shift family, 2-independent for 32-bit keys
(Dietzfelbinger, 1996). A text's signature holds the minimum of each ``h_i`` over its shingles; the fraction
of positions where two signatures agree estimates the Jaccard similarity of their shingle sets with a
standard error of ``sqrt(J(1-J)/128)``, about 0.035 near 0.8. Since ``>> 32`` is monotonic the minimum is
taken on the 64-bit values and shifted after. The work is one ``(128, 8192)`` matrix per chunk of shingles
(8 MB), reduced per text with ``np.minimum.reduceat``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: Words per word shingle.
WORD_NGRAM = 3
#: Characters (code points) per character shingle.
CHAR_NGRAM = 5
#: Texts with fewer words than this are shingled by characters.
CHAR_SPACE_MAX_WORDS = 32
#: Texts with at least this many words are shingled by words (24..31 get both).
WORD_SPACE_MIN_WORDS = 24
#: Hash functions per signature.
NUM_PERM = 128
#: Seed of the hash functions: signatures are comparable only between hashers built with the same seed.
MINHASH_SEED = 0x5EED

U64 = NDArray[np.uint64]
Indices = NDArray[np.intp]
_WORD = re.compile(r"\w+")
_SALT = {"words": np.uint64(0x9E3779B97F4A7C15), "characters": np.uint64(0xC2B2AE3D27D4EB4F)}
_UNIT_BASE = 0x100000001B3  # polynomial base over code points (the FNV prime; odd, so invertible mod 2**64)
_NGRAM_BASE = np.uint64(0xFF51AFD7ED558CCD)  # polynomial base over unit hashes
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_S32 = np.uint64(32)
_SPACE = 32
# Shingles per minhash chunk: a (128, 8192) uint64 matrix is 8 MB, small enough to stay in cache.
_CHUNK_SHINGLES = 8192


def canonical_text(text: str) -> str:
    r"""The normalised form shingles are cut from: NFKC, case folded, ``\w`` words joined by single spaces.

    It equals `datamill.steps.dedup.normalize_text`; `TextBatch` computes the same words without building it.
    """
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(_WORD.findall(text.casefold()))


def fmix64(h: U64) -> U64:
    """MurmurHash3's 64-bit finaliser: every input bit affects every output bit (in place, and returned)."""
    h ^= h >> _S33
    h *= _M1
    h ^= h >> _S33
    h *= _M2
    h ^= h >> _S33
    return h


@dataclass(frozen=True, slots=True)
class TextBatch:
    r"""Texts normalised into one array of code points, with their words located.

    Attributes:
        cp: code points of the NFKC, case-folded texts joined by NUL characters.
        is_word: whether each code point is a ``\w`` character.
        starts: position of the first character of every word, in order.
        ends: position after the last character of every word.
        word_doc: the text each word belongs to.
        count: how many texts.
    """

    cp: NDArray[np.uint32]
    is_word: NDArray[np.bool_]
    starts: Indices
    ends: Indices
    word_doc: Indices
    count: int

    @classmethod
    def of(cls, texts: Sequence[str]) -> TextBatch:
        joined = "\x00".join(t.replace("\x00", " ") if "\x00" in t else t for t in texts)
        if not joined.isascii():
            joined = unicodedata.normalize("NFKC", joined)
        # surrogatepass: a lone surrogate (from a JSON "\ud800" escape) is a non-word character, not an error.
        cp = np.frombuffer(joined.casefold().encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        is_word = _word_characters(cp, ascii_only=joined.isascii())
        padded = np.zeros(cp.size + 2, dtype=np.bool_)
        padded[1:-1] = is_word
        edges = np.flatnonzero(padded[1:] != padded[:-1])  # alternately a word's start and its end
        starts, ends = edges[0::2], edges[1::2]
        separators = np.flatnonzero(cp == 0)
        word_doc = np.searchsorted(separators, starts, side="right")
        return cls(cp, is_word, starts, ends, word_doc, len(texts))

    def word_counts(self) -> Indices:
        """Words per text."""
        return np.bincount(self.word_doc, minlength=self.count)

    def word_hashes(self) -> U64:
        """A 64-bit hash per word, from its code points alone (the same word hashes the same anywhere)."""
        size = self.cp.size
        powers, inverse = _power_tables(size)
        prefix = np.zeros(size + 1, dtype=np.uint64)
        np.cumsum(self.cp * powers[:size], out=prefix[1:])
        return fmix64((prefix[self.ends] - prefix[self.starts]) * inverse[self.starts])

    def word_shingles(self, selected: Indices, n: int = WORD_NGRAM) -> Shingles:
        """Word n-gram hashes of the ``selected`` texts (numbered 0.. in the result)."""
        local = _local_numbers(selected, self.count)[self.word_doc]
        keep = local >= 0
        return ngram_shingles(self.word_hashes()[keep], local[keep], n, selected.size, "words")

    def char_shingles(self, selected: Indices, n: int = CHAR_NGRAM) -> Shingles:
        """Character n-gram hashes of the ``selected`` texts: words and one space between words."""
        first = np.ones(self.starts.size, dtype=np.bool_)
        first[1:] = self.word_doc[1:] != self.word_doc[:-1]
        gaps = self.starts[~first] - 1  # a non-word character stands for the single space
        chars = self.is_word.copy()
        chars[gaps] = True
        values = self.cp.copy()
        values[gaps] = _SPACE
        positions = np.flatnonzero(chars)
        separators = np.flatnonzero(self.cp == 0)
        local = _local_numbers(selected, self.count)[np.searchsorted(separators, positions, side="right")]
        keep = local >= 0
        units = fmix64(values[positions[keep]].astype(np.uint64) * np.uint64(_UNIT_BASE))
        return ngram_shingles(units, local[keep], n, selected.size, "characters")


def _word_characters(cp: NDArray[np.uint32], *, ascii_only: bool) -> NDArray[np.bool_]:
    # Unsigned wrap-around turns each range test into one comparison: [0-9], [a-z], [A-Z], "_".
    is_word: NDArray[np.bool_] = ((cp - 48) < 10) | ((cp - 97) < 26) | ((cp - 65) < 26) | (cp == 95)
    if not ascii_only:
        wide = np.flatnonzero(cp >= 128)
        distinct, inverse = np.unique(cp[wide], return_inverse=True)
        word = np.array([chr(c).isalnum() for c in distinct.tolist()], dtype=np.bool_)
        is_word[wide] = word[inverse]
    return is_word


def _local_numbers(selected: Indices, count: int) -> Indices:
    local = np.full(count, -1, dtype=np.intp)
    local[selected] = np.arange(selected.size)
    return local


def _power_tables(size: int) -> tuple[U64, U64]:
    """``P**k`` and ``P**-k`` mod ``2**64`` for k in ``range(size)`` at least (read-only arrays)."""
    rounded = max(1024, 1 << (size - 1).bit_length())
    # Tables up to 4M entries (64 MB for both) are kept between batches; a larger one is built each time.
    return _cached_power_tables(rounded) if rounded <= 1 << 22 else _build_power_tables(rounded)


@functools.lru_cache(maxsize=2)
def _cached_power_tables(count: int) -> tuple[U64, U64]:
    return _build_power_tables(count)


def _build_power_tables(count: int) -> tuple[U64, U64]:
    tables = []
    for base in (_UNIT_BASE, pow(_UNIT_BASE, -1, 2**64)):
        table = np.full(count, np.uint64(base), dtype=np.uint64)
        table[0] = 1
        table = np.cumprod(table, dtype=np.uint64)
        table.flags.writeable = False
        tables.append(table)
    return tables[0], tables[1]


@dataclass(frozen=True, slots=True)
class Shingles:
    """The shingle hashes of a batch of texts, grouped by text.

    Attributes:
        hashes: 32-bit shingle hashes (as uint64), text by text; a text may repeat a hash.
        docs: the text each hash belongs to (non-decreasing).
        count: how many texts were shingled (a text may have no shingles).
    """

    hashes: U64
    docs: Indices
    count: int


def ngram_shingles(units: U64, docs: Indices, n: int, count: int, kind: str) -> Shingles:
    """Hashes of the n-grams of consecutive units of the same text; a text of fewer units is one n-gram."""
    salt = _SALT[kind]
    size = units.size - n + 1
    if size > 0:
        gram = np.full(size, salt, dtype=np.uint64)
        for j in range(n):
            gram *= _NGRAM_BASE
            gram += units[j : j + size]
        valid = docs[:size] == docs[n - 1 :]
        hashes, owners = gram[valid], docs[:size][valid]
    else:
        hashes, owners = np.empty(0, np.uint64), np.empty(0, np.intp)
    short = np.flatnonzero(
        (np.bincount(owners, minlength=count) == 0) & (np.bincount(docs, minlength=count) > 0)
    )
    if short.size:
        hashes, owners = _add_whole_texts(hashes, owners, units, docs, short, salt)
    return Shingles(fmix64(hashes) >> _S32, owners, count)


def _add_whole_texts(
    hashes: U64, owners: Indices, units: U64, docs: Indices, short: Indices, salt: np.uint64
) -> tuple[U64, Indices]:
    """Append one shingle per short text (all its units), keeping the hashes grouped by text."""
    begin = np.searchsorted(docs, short, side="left")
    end = np.searchsorted(docs, short, side="right")
    extra = np.empty(short.size, np.uint64)
    for k, (lo, hi) in enumerate(zip(begin.tolist(), end.tolist(), strict=True)):
        gram = np.full(1, salt, dtype=np.uint64)
        for unit in units[lo:hi]:
            gram *= _NGRAM_BASE
            gram += unit
        extra[k] = gram[0]
    all_owners = np.concatenate([owners, short])
    order = np.argsort(all_owners, kind="stable")
    return np.concatenate([hashes, extra])[order], all_owners[order]


class MinHasher:
    """Computes MinHash signatures for batches of shingled texts.

    Args:
        num_perm: hash functions per signature.
        seed: seed of the hash functions (signatures from different seeds are not comparable).
    """

    def __init__(self, num_perm: int = NUM_PERM, seed: int = MINHASH_SEED) -> None:
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        self._a = (rng.integers(0, 2**64, num_perm, dtype=np.uint64) | np.uint64(1))[:, None]
        self._b = rng.integers(0, 2**64, num_perm, dtype=np.uint64)[:, None]

    def signatures(self, shingles: Shingles) -> NDArray[np.uint32]:
        """One row of ``num_perm`` uint32 minima per text; a text without shingles gets all ``2**32 - 1``."""
        sig = np.full((self.num_perm, shingles.count), np.iinfo(np.uint64).max, dtype=np.uint64)
        buf = np.empty((self.num_perm, _CHUNK_SHINGLES), dtype=np.uint64)
        total = shingles.hashes.size
        for lo in range(0, total, _CHUNK_SHINGLES):
            hi = min(lo + _CHUNK_SHINGLES, total)
            out = buf[:, : hi - lo]
            np.multiply(self._a, shingles.hashes[None, lo:hi], out=out)
            out += self._b
            docs = shingles.docs[lo:hi]
            seg = np.flatnonzero(np.concatenate(([True], docs[1:] != docs[:-1])))
            owners = docs[seg]
            # A text split across chunks is folded in with the minimum of what it had.
            sig[:, owners] = np.minimum(sig[:, owners], np.minimum.reduceat(out, seg, axis=1))
        return np.ascontiguousarray((sig >> _S32).T).astype(np.uint32)


def choose_bands(threshold: float, num_perm: int = NUM_PERM, min_recall: float = 0.995) -> tuple[int, int]:
    """LSH bands and rows per band for a Jaccard threshold.

    Two texts become candidates when all ``rows`` values of at least one band agree, which happens with
    probability ``1 - (1 - s**rows)**bands`` at similarity ``s``. The most rows per band (the fewest chance
    candidates) whose probability at the threshold still reaches ``min_recall`` wins: for 0.8 and 128
    values, 21 bands of 6 rows (0.998 at 0.8, 0.28 at 0.5, 0.015 at 0.3).
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be between 0 and 1")
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if candidate_probability(threshold, bands, rows) >= min_recall:
            return bands, rows
    return num_perm, 1


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Probability that two texts at ``similarity`` share at least one band."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def band_keys(signatures: NDArray[np.uint32], bands: int, rows: int) -> U64:
    """One 64-bit key per (text, band): a hash of the band's ``rows`` signature values and its index.

    A chance collision between different bands or values only adds a candidate that verification rejects.
    """
    count = signatures.shape[0]
    values = signatures[:, : bands * rows].astype(np.uint64).reshape(count, bands, rows)
    keys = np.broadcast_to(np.arange(bands, dtype=np.uint64) + _SALT["words"], (count, bands)).copy()
    for j in range(rows):
        keys *= _NGRAM_BASE
        keys += values[:, :, j]
    return fmix64(keys)


@dataclass(frozen=True, slots=True)
class SpaceSignatures:
    """The signatures of the texts of a batch that belong to one shingle space.

    Attributes:
        space: ``"characters"`` or ``"words"``.
        members: indices (into the batch) of the texts signed in this space.
        signatures: one row per member.
    """

    space: str
    members: Indices
    signatures: NDArray[np.uint32]


def sign_texts(
    hasher: MinHasher, texts: Sequence[str], *, word_ngram: int = WORD_NGRAM, char_ngram: int = CHAR_NGRAM
) -> tuple[SpaceSignatures, SpaceSignatures]:
    """Signatures of raw texts in the character space (short texts) and the word space (longer ones).

    Texts without a word are in neither. The batch is normalised in slices of at most `_SLICE_CHARS`
    characters, so one batch of very long texts does not need gigabytes of temporary arrays.
    """
    parts: dict[str, tuple[list[Indices], list[NDArray[np.uint32]]]] = {
        "characters": ([], []),
        "words": ([], []),
    }
    for lo, hi in _slices(texts):
        batch = TextBatch.of(texts[lo:hi])
        counts = batch.word_counts()
        short = np.flatnonzero((counts > 0) & (counts < CHAR_SPACE_MAX_WORDS))
        long = np.flatnonzero(counts >= WORD_SPACE_MIN_WORDS)
        if short.size:
            parts["characters"][0].append(short + lo)
            parts["characters"][1].append(hasher.signatures(batch.char_shingles(short, char_ngram)))
        if long.size:
            parts["words"][0].append(long + lo)
            parts["words"][1].append(hasher.signatures(batch.word_shingles(long, word_ngram)))
    by_chars, by_words = (
        SpaceSignatures(
            name,
            np.concatenate(members) if members else np.empty(0, np.intp),
            np.concatenate(sigs) if sigs else np.empty((0, hasher.num_perm), np.uint32),
        )
        for name, (members, sigs) in parts.items()
    )
    return by_chars, by_words


# Characters normalised at once by `sign_texts` (about 30 bytes of temporary arrays per character).
_SLICE_CHARS = 2_000_000


def _slices(texts: Sequence[str]) -> list[tuple[int, int]]:
    out, lo, size = [], 0, 0
    for i, text in enumerate(texts):
        if size and size + len(text) > _SLICE_CHARS:
            out.append((lo, i))
            lo, size = i, 0
        size += len(text)
    out.append((lo, len(texts)))
    return out
