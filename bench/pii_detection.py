"""Precision and recall of the ``pii_m1`` detector, per PII type, on the labelled synthetic corpus.

The corpus is `bench.pii_corpus`: sentence templates in English (US, UK), German, French and Spanish with
Faker values and valid identity numbers, plus sentences without personal data. Every document goes
through the detector and `datamill.text.pii.resolve` as an anonymization run would (every type asked
except ``first_name``, ``last_name``, ``date`` and ``location``), at several thresholds. The default seed
is 1: the detector's own patterns were written while looking at seed 0's documents.

Per type, at each threshold:

- precision: the share of spans found that overlap a labelled span of the same type;
- recall: the share of labelled spans wholly covered by spans found of the same type;
- masked: the share of labelled spans wholly covered by spans found of any type (the value does not
  survive anonymization, even if it was given another type).

Also the detector's load time and its speed on this machine, on the documents and on the cells of 100
records (`bench.pii_corpus.structured_rows`), both read in batches as anonymization runs read them.

    python -m bench.pii_detection                  # 10 documents per template and locale
    python -m bench.pii_detection --per-template 3 --out /tmp/pii.json
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench._support import cpu_s, vm_hwm_mb, write_result
from bench.pii_corpus import Document, build_corpus, structured_rows
from datamill.text.pii.resolve import resolve
from datamill.text.pii.rules import rule_detector
from datamill.text.pii.types import DEFAULT_THRESHOLD, PII_TYPES, Entity

RESULTS = Path(__file__).parent / "results" / "pii_detection.json"
THRESHOLDS = (0.2, 0.35, 0.5, 0.7, 0.9)
#: Every type but the name parts, plain dates and places (the corpus labels no place outside an address).
LABELS = tuple(t for t in PII_TYPES if t not in ("first_name", "last_name", "date", "location"))


def score(docs: list[Document], found: list[list[Entity]]) -> dict[str, dict[str, Any]]:
    counts: dict[str, Counter[str]] = {label: Counter() for label in LABELS}
    for doc, spans in zip(docs, found, strict=True):
        for gold in doc.spans:
            row = counts[gold.label]
            row["gold"] += 1
            same = [s for s in spans if s.label == gold.label]
            wanted = [i for i in range(gold.start, gold.end) if not doc.text[i].isspace()]
            row["recalled"] += all(any(s.start <= i < s.end for s in same) for i in wanted)
            row["masked"] += all(any(s.start <= i < s.end for s in spans) for i in wanted)
        for span in spans:
            row = counts[span.label]
            row["found"] += 1
            row["correct"] += any(
                g.label == span.label and g.start < span.end and span.start < g.end for g in doc.spans
            )
    table: dict[str, dict[str, Any]] = {}
    for label, row in counts.items():
        table[label] = {
            "gold": row["gold"],
            "found": row["found"],
            "precision": round(row["correct"] / row["found"], 3) if row["found"] else None,
            "recall": round(row["recalled"] / row["gold"], 3) if row["gold"] else None,
            "masked": round(row["masked"] / row["gold"], 3) if row["gold"] else None,
        }
    total = Counter[str]()
    for row in counts.values():
        total.update(row)
    table["all"] = {
        "gold": total["gold"],
        "found": total["found"],
        "precision": round(total["correct"] / total["found"], 3) if total["found"] else None,
        "recall": round(total["recalled"] / total["gold"], 3) if total["gold"] else None,
        "masked": round(total["masked"] / total["gold"], 3) if total["gold"] else None,
    }
    return table


def measure(per_template: int, seed: int) -> dict[str, Any]:
    docs = build_corpus(seed=seed, per_template=per_template)
    started, cpu = time.perf_counter(), cpu_s()
    detector = rule_detector()
    load_s, load_cpu = time.perf_counter() - started, cpu_s() - cpu
    started, cpu = time.perf_counter(), cpu_s()
    candidates = detector.detect_many([doc.text for doc in docs], LABELS)
    detect_s, detect_cpu = time.perf_counter() - started, cpu_s() - cpu
    cells = [str(v) for row in structured_rows(seed=seed, count=100) for v in row.values()]
    started, cpu = time.perf_counter(), cpu_s()
    detector.detect_many(cells, LABELS)
    cells_s, cells_cpu = time.perf_counter() - started, cpu_s() - cpu
    chars = sum(len(d.text) for d in docs)
    by_threshold = {
        str(threshold): score(
            docs, [resolve(d.text, c, LABELS, threshold) for d, c in zip(docs, candidates, strict=True)]
        )
        for threshold in THRESHOLDS
    }
    by_locale = {}
    for locale in sorted({d.locale for d in docs}):
        pairs = [(d, c) for d, c in zip(docs, candidates, strict=True) if d.locale == locale]
        by_locale[locale] = score(
            [d for d, _ in pairs], [resolve(d.text, c, LABELS, DEFAULT_THRESHOLD) for d, c in pairs]
        )["all"]
    return {
        "benchmark": "pii_detection",
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "documents": len(docs),
        "characters": chars,
        "seed": seed,
        "per_template": per_template,
        "load_s": round(load_s, 2),
        "load_cpu_s": round(load_cpu, 2),
        "detect_s": round(detect_s, 2),
        "detect_cpu_s": round(detect_cpu, 2),
        "documents_per_s": round(len(docs) / detect_s, 1) if detect_s else None,
        "chars_per_cpu_s": round(chars / detect_cpu) if detect_cpu else None,
        "table_cells": len(cells),
        "cells_per_s": round(len(cells) / cells_s, 1) if cells_s else None,
        "cells_per_cpu_s": round(len(cells) / cells_cpu, 1) if cells_cpu else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "peak_rss_mb": round(vm_hwm_mb()),
        "default_threshold": DEFAULT_THRESHOLD,
        "by_threshold": by_threshold,
        "by_locale_at_default": by_locale,
    }


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _markdown(result: dict[str, Any]) -> str:
    default = result["by_threshold"][str(result["default_threshold"])]
    lines = [
        f"pii_m1 on {result['documents']} synthetic documents ({result['characters']:,} characters; EN-US, "
        f"EN-GB, DE, FR, ES; seed {result['seed']}), every type asked but name parts, plain dates and "
        "places; threshold 0.35 (the default).",
        "",
        "| type | labelled | found | precision | recall | masked |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in default.items():
        lines.append(
            f"| {label} | {row['gold']} | {row['found']} | {_fmt(row['precision'])} | {_fmt(row['recall'])} "
            f"| {_fmt(row['masked'])} |"
        )
    lines += [
        "",
        "All types by threshold:",
        "",
        "| threshold | precision | recall | masked |",
        "|---|---|---|---|",
    ]
    for threshold, table in result["by_threshold"].items():
        row = table["all"]
        lines.append(
            f"| {threshold} | {_fmt(row['precision'])} | {_fmt(row['recall'])} | {_fmt(row['masked'])} |"
        )
    lines += ["", "By locale at the default threshold:", "", "| locale | precision | recall | masked |"]
    lines.append("|---|---|---|---|")
    for locale, row in result["by_locale_at_default"].items():
        lines.append(
            f"| {locale} | {_fmt(row['precision'])} | {_fmt(row['recall'])} | {_fmt(row['masked'])} |"
        )
    lines += [
        "",
        f"Load {result['load_s']} s (the spaCy model); {result['documents_per_s']} documents/s, "
        f"{result['chars_per_cpu_s']:,} characters per CPU second; table cells (csv-like records): "
        f"{result['cells_per_s']}/s, {result['cells_per_cpu_s']} per CPU second; peak RSS "
        f"{result['peak_rss_mb']} MB; load average {result['load_average_1m']} when measured.",
        "Precision: spans found that overlap a labelled span of their type. Recall: labelled spans wholly "
        "covered by spans of their type. Masked: wholly covered by spans of any type.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--per-template", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    write_result(args.out, measure(args.per_template, args.seed), _markdown)


if __name__ == "__main__":
    main()
