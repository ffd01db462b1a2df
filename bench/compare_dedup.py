"""The near-dedup peers that are not project dependencies: where to run them, and text-dedup's engine.

``bench.dedup`` runs every engine in its own interpreter. datasketch, rensa and text-dedup live in
``bench/.venv-compare`` (``make bench-compare``), so an engine that the project venv cannot import runs under
that venv's python instead, with the project's ``src`` on ``PYTHONPATH`` so the corpus and the exact-Jaccard
scorer are the very same code (``datamill.steps.minhash`` needs only numpy, which the peers bring).

text-dedup 0.4.0 is a command-line script over Hugging Face datasets; its ``minhash`` module has no library
entry point, so :func:`run_text_dedup` repeats the script's steps on the in-memory corpus: ``embed_func``
in a ``datasets.map`` with 2 processes (its own hashing and its own band choice from ``optimal_param``),
band tables, then union-find clusters. It does not verify candidates: every document that shares a band
with another joins its cluster, and all but the cluster's smallest index are removed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS_PYTHON = ROOT / "bench" / ".venv-compare" / "bin" / "python"
# text-dedup's own default; perf-notes.md measured it with 2 processes on this 2-core machine.
TEXT_DEDUP_PROCS = 2
MODULES = {"datasketch": "datasketch", "rensa": "rensa", "text-dedup": "text_dedup"}


def python_for(engine: str) -> str | None:
    """The interpreter that can run ``engine``: this one, the compare venv's, or None (skip it)."""
    module = MODULES.get(engine)
    if module is None or importlib.util.find_spec(module) is not None:
        return sys.executable
    if not PEERS_PYTHON.exists():
        return None
    probe = [
        str(PEERS_PYTHON),
        "-c",
        f"import importlib.util, sys; sys.exit(not importlib.util.find_spec('{module}'))",
    ]
    return str(PEERS_PYTHON) if subprocess.call(probe) == 0 else None


def child_env() -> dict[str, str]:
    """The environment for an engine's interpreter: the project's ``src`` importable after the venv's own."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    return env


def run_text_dedup(
    texts: list[str], ngram: int, threshold: float, num_perm: int
) -> tuple[list[tuple[int, int]], dict[str, float]]:
    """text-dedup's MinHash script on ``texts`` (canonical text, word ``ngram``-grams).

    Returns:
        The (removed row, kept row) pairs and the timings.
    """
    import datasets
    import numpy as np
    from text_dedup.minhash import SIGNATURE_COLUMN, embed_func
    from text_dedup.utils import INDEX_COLUMN, UnionFind, optimal_param, xxh3_32hash

    from datamill.steps.minhash import canonical_text

    datasets.disable_progress_bars()
    bands, rows = optimal_param(threshold, num_perm, false_positive_weight=0.5, false_negative_weight=0.5)
    ranges = [(i * rows, (i + 1) * rows) for i in range(bands)]
    rng = np.random.RandomState(42)
    dtype, max_hash, prime = np.uint64, np.uint32((1 << 32) - 1), np.uint64((1 << 61) - 1)
    perms = (
        rng.randint(1, prime, size=(num_perm,), dtype=dtype),
        rng.randint(0, prime, size=(num_perm,), dtype=dtype),
    )
    started = time.perf_counter()
    ds = datasets.Dataset.from_dict(
        {"text": [canonical_text(t) for t in texts], INDEX_COLUMN: list(range(len(texts)))}
    )
    embedded = ds.map(
        embed_func,
        fn_kwargs={
            "num_perm": num_perm,
            "hashranges": ranges,
            "ngram_size": ngram,
            "min_length": 0,
            "permutations": perms,
            "hash_func": xxh3_32hash,
            "dtype": dtype,
            "max_hash": max_hash,
            "modulo_prime": prime,
        },
        input_columns=["text", INDEX_COLUMN],
        remove_columns=["text"],
        num_proc=TEXT_DEDUP_PROCS,
    )
    hashing = time.perf_counter() - started
    tables: list[dict[bytes, set[int]]] = [defaultdict(set) for _ in range(bands)]
    for key, signature in zip(embedded[INDEX_COLUMN], embedded[SIGNATURE_COLUMN], strict=True):
        for band, value in enumerate(signature):
            tables[band][value].add(key)
    uf = UnionFind()
    for table in tables:
        for cluster in table.values():
            if len(cluster) > 1:
                root = min(cluster)
                for member in cluster:
                    uf.union(member, root)
    # Union by rank may make any member the root; like the script, keep each cluster's first document.
    first: dict[int, int] = {}
    for i in range(len(texts)):
        first.setdefault(uf.find(i), i)
    pairs = [(i, first[uf.find(i)]) for i in range(len(texts)) if first[uf.find(i)] != i]
    total = time.perf_counter() - started
    return pairs, {"hashing_s": hashing, "total_s": total, "bands": float(bands)}
