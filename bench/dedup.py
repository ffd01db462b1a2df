"""Near-duplicate detection: throughput, peak memory and precision/recall of NearDedup on planted corpora.

Two synthetic corpora with known answers (words drawn from a Zipf-distributed vocabulary, so unrelated texts
still share common words):

- ``docs``: ``--docs`` texts of 32–200 words (default 100,000), compared by word 3-grams;
- ``prompts``: ``--prompts`` texts of 6–23 words (default 20,000), compared by character 5-grams.

About 40% of the texts are edited copies of an earlier text: cosmetic copies, copies
at an exact Jaccard similarity drawn from 0.82–1.0, and negatives at about 0.65 and 0.5 (the edited copy
closest to the level). Each copy comes later in the file than its source. The exact Jaccard similarity
is computed with plain Python sets, independently of the numpy code under test.

- recall: planted copies with exact Jaccard ≥ 0.8 to their source that were removed;
- precision: removed rows whose named row really is at ≥ 0.8 (exact Jaccard);
- hashing docs/s: normalising, shingling and signatures alone; LSH docs/s: the rest of the step (index
  look-ups, verification, inserts); peak RSS: VmHWM of the process that ran the engine, with the corpus.

Each engine runs in its own interpreter. ``datasketch``, ``rensa`` and ``text-dedup`` run too when this
interpreter or the compare venv (``make bench-compare``, see ``bench/compare_dedup.py``) can import them
(they are not dependencies): datasketch and rensa with the same shingles, 128 permutations and threshold,
verifying candidates by their own Jaccard estimate; text-dedup with its own hashing and band choice on the
same canonical text and word n-grams (``docs`` corpus only: it has no character shingles). Writes
bench/results/dedup.json (``summary_md``: a markdown table); ``--results`` writes elsewhere.

    python -m bench.dedup --docs 100000                   # one size
    python -m bench.dedup --docs 100000,1000000 --prompts 0 --engines datamill,rensa --merge

``--docs`` takes several sizes (the table then shows how time and memory grow); ``--engines`` runs some of
the engines only, and ``--merge`` keeps the results on disk for the (engine, corpus, size) runs not redone.
Each run also records the machine's 1-minute load average as it started and its CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.compare_dedup import child_env, python_for

RESULTS = Path(__file__).parent / "results" / "dedup.json"
THRESHOLD = 0.8
NUM_PERM = 128
BATCH = 1000
# Planted copies, in turn: a cosmetic copy (case, punctuation), three near-copies at a similarity drawn from
# 0.82–1.0, and two negatives at about 0.65 and 0.5. None means "draw".
PLANTED = (1.0, None, None, None, 0.65, 0.5)
# Buckets of the removal-rate report (exact Jaccard similarity to the source).
BUCKETS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.5)
CORPORA = {"docs": (32, 200, "words"), "prompts": (6, 23, "characters")}
ENGINES = ("datamill", "datasketch", "rensa", "text-dedup")


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---- corpus -------------------------------------------------------------------------------------------


def shingle_set(text: str, space: str) -> set[str]:
    """The exact shingle set, in plain Python (the reference for the numpy code)."""
    from datamill.steps.minhash import CHAR_NGRAM, WORD_NGRAM, canonical_text

    canon = canonical_text(text)
    if space == "characters":
        n = CHAR_NGRAM
        return {canon[i : i + n] for i in range(len(canon) - n + 1)} or {canon}
    words = canon.split()
    n = WORD_NGRAM
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)} or {" ".join(words)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _vocabulary(rng: random.Random, size: int = 20000) -> tuple[list[str], list[float]]:
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    words = sorted({"".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(size * 2)})[:size]
    rng.shuffle(words)
    return words, [1.0 / (rank + 1) for rank in range(len(words))]


def _edit(words: list[str], rng: random.Random, vocab: list[str]) -> list[str]:
    out = list(words)
    kind = rng.random()
    pos = rng.randrange(len(out))
    if kind < 0.8:
        out[pos] = rng.choice(vocab)
    elif kind < 0.9 and len(out) > 2:
        del out[pos]
    else:
        out.insert(pos, rng.choice(vocab))
    return out


def _variant(source: str, level: float, space: str, rng: random.Random, vocab: list[str]) -> str:
    """An edited copy of ``source``: at or above ``level`` when that is a near-copy, else closest to it."""
    if level >= 1.0:  # a cosmetic copy: case and punctuation only
        return source.upper().replace(" ", ", ", 1) + "?"
    reference = shingle_set(source, space)
    words = source.split()
    best, best_gap = words, 1.0
    for _ in range(200):
        words = _edit(words, rng, vocab)
        sim = jaccard(reference, shingle_set(" ".join(words), space))
        if sim < level - 0.1 or (level >= THRESHOLD and sim < level):
            break
        if abs(sim - level) < best_gap:
            best, best_gap = words, abs(sim - level)
    return " ".join(best)


def build_corpus(count: int, corpus: str, seed: int = 7) -> tuple[list[str], list[int | None]]:
    """``count`` texts and, for each, the index of the text it was copied from (None for originals)."""
    low, high, space = CORPORA[corpus]
    rng = random.Random(seed)
    vocab, weights = _vocabulary(rng)
    originals = int(count * 0.6)
    texts = [" ".join(rng.choices(vocab, weights, k=rng.randint(low, high))) for _ in range(originals)]
    order = [float(i) for i in range(originals)]
    sources: list[int | None] = [None] * originals
    for k in range(count - originals):
        src = rng.randrange(originals)
        level = PLANTED[k % len(PLANTED)]
        texts.append(
            _variant(texts[src], rng.uniform(0.82, 1.0) if level is None else level, space, rng, vocab)
        )
        sources.append(src)
        order.append(src + rng.uniform(0.5, originals * 0.2))
    perm = sorted(range(count), key=order.__getitem__)
    where = {old: new for new, old in enumerate(perm)}
    return [texts[i] for i in perm], [None if (s := sources[i]) is None else where[s] for i in perm]


# ---- engines ------------------------------------------------------------------------------------------


def run_datamill(texts: list[str]) -> tuple[list[tuple[int, int]], dict[str, float]]:
    from datamill.steps.base import StepContext
    from datamill.steps.minhash import MinHasher, sign_texts
    from datamill.steps.near_dedup import NearDedup

    hasher = MinHasher(NUM_PERM)
    started = time.perf_counter()
    for lo in range(0, len(texts), BATCH):
        sign_texts(hasher, texts[lo : lo + BATCH])
    hashing = time.perf_counter() - started
    step = NearDedup(("text",), threshold=THRESHOLD, num_perm=NUM_PERM)
    ctx = StepContext()
    started = time.perf_counter()
    for lo in range(0, len(texts), BATCH):
        step.process_batch(
            [{"_row": i + 1, "text": texts[i]} for i in range(lo, min(lo + BATCH, len(texts)))], ctx
        )
    total = time.perf_counter() - started
    pairs = [(r.row["_row"] - 1, int(r.reason.split("row ")[1].split(" ")[0]) - 1) for r in ctx.rejected]
    return pairs, {"hashing_s": hashing, "total_s": total, "index_mb": step.index_nbytes / 2**20}


def _library_run(
    texts: list[str],
    space: str,
    make: Callable[[list[str]], Any],
    lsh: Any,
    insert: Callable[[Any, int, Any], None],
) -> tuple[list[tuple[int, int]], dict[str, float]]:
    started = time.perf_counter()
    sketches = [make(sorted(shingle_set(t, space))) for t in texts]
    hashing = time.perf_counter() - started
    pairs = []
    for i, m in enumerate(sketches):
        scored = [(m.jaccard(sketches[k]), -k) for k in lsh.query(m)]
        hits = [s for s in scored if s[0] >= THRESHOLD]
        if hits:
            pairs.append((i, -max(hits)[1]))
        else:
            insert(lsh, i, m)
    total = time.perf_counter() - started
    return pairs, {"hashing_s": hashing, "total_s": total}


def run_datasketch(texts: list[str], space: str) -> tuple[list[tuple[int, int]], dict[str, float]]:
    from datasketch import MinHash, MinHashLSH

    def make(shingles: list[str]) -> Any:
        m = MinHash(num_perm=NUM_PERM, seed=1)
        m.update_batch([s.encode() for s in shingles])
        return m

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    return _library_run(texts, space, make, lsh, lambda idx, i, m: idx.insert(i, m))


def run_rensa(texts: list[str], space: str) -> tuple[list[tuple[int, int]], dict[str, float]]:
    from rensa import RMinHash, RMinHashLSH

    def make(shingles: list[str]) -> Any:
        m = RMinHash(num_perm=NUM_PERM, seed=1)
        m.update(shingles)
        return m

    lsh = RMinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, num_bands=16)
    return _library_run(texts, space, make, lsh, lambda idx, i, m: idx.insert(i, m))


def score(
    texts: list[str], sources: list[int | None], space: str, removed: list[tuple[int, int]]
) -> dict[str, Any]:
    """Precision and recall against exact Jaccard similarity, and the removal rate per planted level."""
    true_removals = sum(
        jaccard(shingle_set(texts[i], space), shingle_set(texts[ref], space)) >= THRESHOLD
        for i, ref in removed
    )
    removed_set = {i for i, _ in removed}
    buckets: dict[str, list[int]] = {}
    positives = found = 0
    for i, src in enumerate(sources):
        if src is None:
            continue
        sim = jaccard(shingle_set(texts[i], space), shingle_set(texts[src], space))
        label = next(f"{lv:.2f}" for lv in (*BUCKETS, 0.0) if sim >= lv)
        buckets.setdefault(label, [0, 0])[0] += 1
        buckets[label][1] += i in removed_set
        if sim >= THRESHOLD:
            positives += 1
            found += i in removed_set
    return {
        "removed": len(removed),
        "precision": true_removals / len(removed) if removed else 1.0,
        "recall": found / positives if positives else 1.0,
        "removal_rate_by_similarity": {k: round(v[1] / v[0], 4) for k, v in sorted(buckets.items())},
    }


def run_engine(engine: str, corpus: str, count: int) -> dict[str, Any]:
    texts, sources = build_corpus(count, corpus)
    space = CORPORA[corpus][2]
    rss_corpus = _peak_rss_mb()
    if engine == "datamill":
        removed, timing = run_datamill(texts)
    elif engine == "text-dedup":
        from bench.compare_dedup import run_text_dedup
        from datamill.steps.minhash import WORD_NGRAM

        removed, timing = run_text_dedup(texts, WORD_NGRAM, THRESHOLD, NUM_PERM)
    else:
        removed, timing = (run_datasketch if engine == "datasketch" else run_rensa)(texts, space)
    rss = _peak_rss_mb()
    n = len(texts)
    # datamill's hashing is timed in a separate pass, so on small corpora noise can exceed the LSH time.
    lsh_s = timing["total_s"] - timing["hashing_s"]
    return {
        "engine": engine,
        "corpus": corpus,
        "docs": n,
        "hashing_docs_per_s": round(n / timing["hashing_s"]),
        "lsh_docs_per_s": round(n / lsh_s) if lsh_s > 0 else None,
        "end_to_end_docs_per_s": round(n / timing["total_s"]),
        "peak_rss_mb": round(rss, 1),
        "corpus_rss_mb": round(rss_corpus, 1),
        **({"index_mb": round(timing["index_mb"], 1)} if "index_mb" in timing else {}),
        **score(texts, sources, space, removed),
    }


# ---- driver -------------------------------------------------------------------------------------------


def _child(engine: str, corpus: str, count: int, python: str) -> dict[str, Any]:
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = _child_run(engine, corpus, count, python)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["loadavg_before"] = round(load, 2)
    result["cpu_s"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)
    return result


def _child_run(engine: str, corpus: str, count: int, python: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            python,
            "-m",
            "bench.dedup",
            "--engine",
            engine,
            "--corpus",
            corpus,
            "--count",
            str(count),
        ]
        code = subprocess.call([*cmd, "--out", str(out)], env=child_env())
        if code != 0 or not out.exists():
            return {"engine": engine, "corpus": corpus, "error": f"exit code {code}"}
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def summary_md(results: list[dict[str, Any]]) -> str:
    results = sorted(results, key=_order)
    lines = [
        f"Threshold {THRESHOLD}, {NUM_PERM} permutations, batches of {BATCH}; datamill shingles: "
        "word 3-grams (docs), character 5-grams (prompts).",
        "",
        "| engine | corpus | docs | hashing docs/s | LSH docs/s | end-to-end docs/s | peak RSS MB (corpus) "
        "| precision | recall | CPU s | load before |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(
                f"| {r['engine']} | {r['corpus']} | {_count(r.get('docs'))} | failed: {r['error']} "
                "| | | | | | | |"
            )
            continue
        lines.append(
            f"| {r['engine']} | {r['corpus']} | {r['docs']:,} | {r['hashing_docs_per_s']:,} | "
            f"{_count(r['lsh_docs_per_s'])} | {r['end_to_end_docs_per_s']:,} | {r['peak_rss_mb']:.0f} "
            f"({r['corpus_rss_mb']:.0f}) | {r['precision']:.4f} | {r['recall']:.4f} "
            f"| {r.get('cpu_s', 'n/a')} | {r.get('loadavg_before', 'n/a')} |"
        )
    growth = _growth(results)
    if growth:
        lines += [
            "",
            "Growth (largest size against the smallest, per engine and corpus): time per document and the "
            "peak RSS above the corpus; 1.00 is linear time.",
            "",
            "| engine | corpus | docs | time per doc, ratio | index + working memory MB |",
            "|---|---|---|---|---|",
            *growth,
        ]
    lines += ["", *_target_lines(results)]
    return "\n".join(lines)


def _target_lines(results: list[dict[str, Any]]) -> list[str]:
    """datamill against its targets: ≥ 15,000 docs/s end to end, precision ≥ 0.999, recall ≥ 0.99."""
    lines = ["Targets (datamill): ≥ 15,000 documents/s end to end, precision ≥ 0.999, recall ≥ 0.99, linear."]
    for r in results:
        if r["engine"] != "datamill" or "error" in r:
            continue
        missed = [
            label
            for label, ok in (
                (f"{r['end_to_end_docs_per_s']:,} docs/s", r["end_to_end_docs_per_s"] >= 15_000),
                (f"precision {r['precision']:.4f}", r["precision"] >= 0.999),
                (f"recall {r['recall']:.4f}", r["recall"] >= 0.99),
            )
            if not ok
        ]
        verdict = "met" if not missed else "MISSED: " + ", ".join(missed)
        load = r.get("loadavg_before")
        if missed and load is not None and load > 1.5:
            verdict += f" (load average {load:.1f} on 2 CPUs as it started)"
        lines.append(f"- {r['corpus']}, {r['docs']:,} documents: {verdict}")
    return lines


def _order(r: dict[str, Any]) -> tuple[int, int, int]:
    engine = ENGINES.index(r["engine"]) if r["engine"] in ENGINES else len(ENGINES)
    return (tuple(CORPORA).index(r["corpus"]), engine, int(r.get("docs") or 0))


def _growth(results: list[dict[str, Any]]) -> list[str]:
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        if "error" not in r:
            runs.setdefault((r["engine"], r["corpus"]), []).append(r)
    lines = []
    for (engine, corpus), rs in runs.items():
        if len(rs) < 2:
            continue
        small, large = rs[0], rs[-1]
        ratio = small["end_to_end_docs_per_s"] / large["end_to_end_docs_per_s"]
        extra = [round(r["peak_rss_mb"] - r["corpus_rss_mb"]) for r in (small, large)]
        lines.append(
            f"| {engine} | {corpus} | {small['docs']:,} → {large['docs']:,} | {ratio:.2f} "
            f"| {extra[0]} → {extra[1]} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--docs", default="100000", help="texts in the 32–200-word corpus (comma-separated sizes)"
    )
    parser.add_argument(
        "--prompts", default="20000", help="texts in the 6–23-word corpus (comma-separated sizes)"
    )
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated engines to run")
    parser.add_argument("--merge", action="store_true", help="keep the other results on disk")
    parser.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", choices=tuple(CORPORA), help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    if args.engine:  # child process: one engine on one corpus
        args.out.write_text(json.dumps(run_engine(args.engine, args.corpus, args.count)))
        return
    engines = [e for e in args.engines.split(",") if e]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engines {unknown}; choose from {', '.join(ENGINES)}")
    results: dict[tuple[str, str, int], dict[str, Any]] = {}
    if args.merge and args.results.exists():
        for r in json.loads(args.results.read_text())["results"]:
            results[(r["engine"], r["corpus"], int(r.get("docs") or 0))] = r
    for corpus, sizes in (("docs", args.docs), ("prompts", args.prompts)):
        for count in (int(x) for x in str(sizes).split(",") if x.strip()):
            for engine in engines:
                python = python_for(engine)
                if count > 0 and python and not (engine == "text-dedup" and corpus != "docs"):
                    print(f"== {engine} on {count:,} {corpus}", flush=True)
                    result = _child(engine, corpus, count, python)
                    result.setdefault("docs", count)
                    results[(engine, corpus, count)] = result
                    print(json.dumps(result), flush=True)
    summary = summary_md(list(results.values()))
    args.results.parent.mkdir(exist_ok=True)
    ordered = sorted(results.values(), key=_order)
    payload = {"threshold": THRESHOLD, "num_perm": NUM_PERM, "results": ordered, "summary_md": summary}
    args.results.write_text(json.dumps(payload, indent=2))
    print(summary)


if __name__ == "__main__":
    main()
