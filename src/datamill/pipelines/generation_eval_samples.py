"""The samples of a generation run, read back for an evaluation, with the values drawn for each.

Both output forms of `datamill.pipelines.generate_output` are read:

- ``OUT.jsonl``: one ``{"id": n, "sample": text or object, "properties": {...}}`` per line;
- a folder (or a set of named files, e.g. a run's stored files): ``sample_<n>.txt`` or ``sample_<n>.json``
  with ``sample_<n>.metadata.json`` (``{"properties": {...}}``) beside it; other files are ignored.

A sample is named ``sample_<n>``; an object sample is evaluated as its JSON text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datamill.core.errors import ValidationError
from datamill.pipelines.generate import GeneratedSample
from datamill.pipelines.generation_eval import EvalSample

_SAMPLE_FILE = re.compile(r"(?:^|/)sample_(\d+)\.(txt|json)$")
_METADATA_FILE = re.compile(r"(?:^|/)sample_(\d+)\.metadata\.json$")


def samples_from_generation(samples: Sequence[GeneratedSample]) -> list[EvalSample]:
    """The delivered samples of a run made in this process."""
    return [EvalSample(f"sample_{s.slot}", s.text, dict(s.properties)) for s in samples]


def read_samples(path: Path) -> list[EvalSample]:
    """The samples in ``path`` (an ``.jsonl`` file or a folder of sample files).

    Raises:
        ValidationError: the path is missing or holds no readable samples (``samples`` names the problem).
    """
    if path.is_dir():
        files = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
        return samples_from_files(files)
    if not path.is_file():
        raise ValidationError.of("samples", f"{path} does not exist (give OUT.jsonl or a folder of samples)")
    return samples_from_jsonl(path.read_text(encoding="utf-8"), str(path))


def samples_from_jsonl(text: str, source: str = "samples") -> list[EvalSample]:
    """Samples from the lines of a run's ``.jsonl`` output."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ValidationError.of("samples", f"{source} line {number} is not JSON: {exc}") from None
        if not isinstance(record, dict) or "sample" not in record:
            raise ValidationError.of("samples", f"{source} line {number} has no 'sample' field")
        ident = record.get("id", number)
        out.append(
            EvalSample(f"sample_{ident}", _text(record["sample"]), _properties(record.get("properties")))
        )
    if not out:
        raise ValidationError.of("samples", f"{source} holds no samples")
    return out


def samples_from_files(files: Mapping[str, bytes]) -> list[EvalSample]:
    """Samples from named files (paths as in a run's folder output), ordered by number."""
    texts: dict[int, str] = {}
    drawn: dict[int, dict[str, str]] = {}
    for name, data in files.items():
        if match := _METADATA_FILE.search(name):
            drawn[int(match.group(1))] = _metadata(data, name)
        elif match := _SAMPLE_FILE.search(name):
            texts[int(match.group(1))] = data.decode("utf-8", errors="replace").strip()
    if not texts:
        raise ValidationError.of("samples", "no sample_<n>.txt or sample_<n>.json files found")
    return [EvalSample(f"sample_{n}", texts[n], drawn.get(n, {})) for n in sorted(texts)]


def _metadata(data: bytes, name: str) -> dict[str, str]:
    try:
        meta = json.loads(data)
    except ValueError as exc:
        raise ValidationError.of("samples", f"{name} is not JSON: {exc}") from None
    return _properties(meta.get("properties") if isinstance(meta, dict) else None)


def _properties(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def _text(sample: Any) -> str:
    return sample if isinstance(sample, str) else json.dumps(sample, ensure_ascii=False)
