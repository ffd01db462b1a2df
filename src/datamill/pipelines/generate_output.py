"""Writing a generation run's samples and summary.

- ``OUT.jsonl``: one line per sample, ``{"id": slot, "sample": text or object, "properties": {...}}`` (an
  object when the seeds were rows), and the run summary beside it as ``OUT.summary.json``.
- any other path: a folder with one file per sample, ``sample_<id>.txt`` (``.json`` when structured),
  ``sample_<id>.metadata.json`` with its drawn properties, and ``run_summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datamill.pipelines.generate import GeneratedSample, GenerationResult


def write_generation(result: GenerationResult, output: Path, *, structured: bool = False) -> list[Path]:
    """Write the samples and the summary; returns the sample files written (the jsonl file, or one each)."""
    summary = json.dumps(result.summary.to_dict(), indent=2, default=str)
    if output.suffix == ".jsonl":
        output.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps(_record(s, structured), ensure_ascii=False) for s in result.samples]
        _write(output, "".join(line + "\n" for line in lines))
        _write(output.with_suffix(".summary.json"), summary)
        return [output]
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for sample in result.samples:
        path = output / f"sample_{sample.slot}.{'json' if structured else 'txt'}"
        _write(path, sample.text + ("" if sample.text.endswith("\n") else "\n"))
        meta = {"properties": sample.properties, "attempts": sample.attempts}
        _write(output / f"sample_{sample.slot}.metadata.json", json.dumps(meta, ensure_ascii=False))
        written.append(path)
    _write(output / "run_summary.json", summary)
    return written


def _record(sample: GeneratedSample, structured: bool) -> dict[str, Any]:
    body: Any = json.loads(sample.text) if structured else sample.text
    return {"id": sample.slot, "sample": body, "properties": sample.properties}


def _write(path: Path, text: str) -> None:
    """Write through a temporary file so a crash never leaves half a file under the final name."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
