"""Seed examples for generation: read from files or folders, and chosen for a prompt within a token budget.

What counts as one seed sample (the Dataframer dataset types):

- a data file (csv, tsv, json, jsonl, parquet, xlsx): each row is a sample (SINGLE_FILE). Its fields are kept,
  so generation writes a JSON object with the same keys, and the structural gate checks it parses;
- any other file (``.txt``, ``.md``, ...): the whole file is one sample (MULTI_FILE);
- a folder: each file directly inside is a sample, and each sub-folder is one sample whose files are joined
  under ``### <name>`` headers (MULTI_FOLDER).

A file of a set that is not UTF-8 text is read as its text: a pdf, docx, pptx or html document as its pages'
text, an xlsx or parquet table as one JSON object a row. Any other binary file is refused, naming it.

Token counts use the heuristic tokenizer (characters / 4): budgets only need to be about right, and it needs
no model. A seed longer than `MAX_SEED_TOKENS` is cut, so one huge file cannot take a whole budget.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datamill.core.errors import DataFormatError
from datamill.dataio import detect_format, document_parts, read_all
from datamill.text.tokenizer import HeuristicTokenizer

#: Formats whose rows are samples; every other file is one text sample.
ROW_FORMATS = ("csv", "tsv", "json", "jsonl", "parquet", "xlsx")
#: The most tokens of one seed shown to a model.
MAX_SEED_TOKENS = 2_000
#: Seeds put in a generation prompt when ``max_examples_in_prompt`` is not set: as many as fit this budget.
DEFAULT_PROMPT_SEED_TOKENS = 10_000
#: Files larger than this are refused as seeds (they are data sets, not examples).
MAX_SEED_FILE_BYTES = 50_000_000

_TOKENIZER = HeuristicTokenizer()


@dataclass(frozen=True)
class Seed:
    """One seed sample: a name, its text, and its fields when it came from a row."""

    name: str
    text: str
    fields: dict[str, Any] | None = None

    @property
    def tokens(self) -> int:
        return _TOKENIZER.count(self.text)


@dataclass(frozen=True)
class SeedSet:
    """The seeds of a dataset and the dataset's type (SINGLE_FILE, MULTI_FILE or MULTI_FOLDER)."""

    seeds: tuple[Seed, ...]
    dataset_type: str

    @property
    def structured(self) -> bool:
        """Samples are JSON objects (rows) rather than free text."""
        return bool(self.seeds) and all(s.fields is not None for s in self.seeds)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(self.seeds[0].fields or {}) if self.structured else ()


def load_seeds(paths: Sequence[str | Path]) -> SeedSet:
    """Read seed samples from files and folders (see the module docstring).

    Raises:
        DataFormatError: a path is missing, unreadable, or holds no sample.
    """
    seeds: list[Seed] = []
    kinds: set[str] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found, kind = _folder(path)
        elif path.is_file():
            found, kind = _file(path)
        else:
            raise DataFormatError(str(path), "no such file or folder")
        seeds.extend(found)
        kinds.add(kind)
    if not seeds:
        raise DataFormatError(", ".join(str(p) for p in paths) or "seeds", "no seed samples found")
    kind = (
        "MULTI_FOLDER"
        if "MULTI_FOLDER" in kinds
        else "MULTI_FILE"
        if "MULTI_FILE" in kinds
        else "SINGLE_FILE"
    )
    return SeedSet(tuple(seeds), kind)


def seeds_from_texts(texts: Iterable[str]) -> SeedSet:
    """Seeds given as strings (tests, the Python API)."""
    return SeedSet(tuple(Seed(f"seed_{i + 1}", t) for i, t in enumerate(texts)), "MULTI_FILE")


def within_budget(seeds: Sequence[Seed], budget: int, *, limit: int | None = None) -> list[Seed]:
    """The leading seeds whose (cut) texts fit ``budget`` tokens, at most ``limit``; always at least one."""
    chosen: list[Seed] = []
    used = 0
    for seed in seeds:
        shown = clip(seed)
        if chosen and (used + shown.tokens > budget or (limit is not None and len(chosen) >= limit)):
            break
        chosen.append(shown)
        used += shown.tokens
    return chosen


def shuffled(seeds: Sequence[Seed], rng: random.Random) -> list[Seed]:
    out = list(seeds)
    rng.shuffle(out)
    return out


def clip(seed: Seed) -> Seed:
    """The seed cut to `MAX_SEED_TOKENS` (its beginning), marked as cut."""
    limit = MAX_SEED_TOKENS * 4
    if len(seed.text) <= limit:
        return seed
    return Seed(seed.name, seed.text[:limit] + "\n[...]", seed.fields)


def _file(path: Path) -> tuple[list[Seed], str]:
    _check_size(path)
    try:
        fmt = detect_format(str(path))
    except DataFormatError:
        fmt = "txt"
    if fmt not in ROW_FORMATS:
        return [Seed(path.name, _read_text(path))], "MULTI_FILE"
    rows = read_all(path).to_pylist()
    return [_row_seed(path, i, row) for i, row in enumerate(rows)], "SINGLE_FILE"


def _row_seed(path: Path, index: int, row: dict[str, Any]) -> Seed:
    fields = {str(k): v for k, v in row.items()}
    return Seed(f"{path.name}#{index + 1}", json.dumps(fields, ensure_ascii=False, default=str), fields)


def _folder(path: Path) -> tuple[list[Seed], str]:
    seeds: list[Seed] = []
    nested = False
    for child in sorted(path.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            nested = True
            parts = [f"### {f.name}\n{_read_text(f)}" for f in sorted(child.rglob("*")) if f.is_file()]
            if parts:
                seeds.append(Seed(child.name, "\n\n".join(parts)))
        elif child.is_file():
            _check_size(child)
            seeds.append(Seed(child.name, _read_text(child)))
    return seeds, "MULTI_FOLDER" if nested else "MULTI_FILE"


#: Formats a seed file of a set may be in besides UTF-8 text: binary tables and documents, read as their text.
_BINARY_TABLES = ("xlsx", "parquet")
_DOCUMENTS = ("pdf", "docx", "pptx", "html")


def _read_text(path: Path) -> str:
    """One seed file of a set as text: a document's text, a binary table's rows, else the file as UTF-8."""
    try:
        fmt = detect_format(str(path))
    except DataFormatError:
        fmt = "txt"
    if fmt in _BINARY_TABLES:  # one JSON object a row, as a structured seed shows its row
        rows = read_all(path).to_pylist()
        return "\n".join(json.dumps(row, ensure_ascii=False, default=str) for row in rows)
    if fmt in _DOCUMENTS:
        parts = document_parts(path.name, fmt, path.read_bytes())
        return "\n\n".join(part.text for part in parts)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        kinds = ", ".join((*_BINARY_TABLES, *_DOCUMENTS))
        raise DataFormatError(str(path), f"seed files must be UTF-8 text, or {kinds} files") from exc


def _check_size(path: Path) -> None:
    if path.stat().st_size > MAX_SEED_FILE_BYTES:
        raise DataFormatError(str(path), f"larger than {MAX_SEED_FILE_BYTES} bytes; too big for a seed file")


def field_schema(seeds: SeedSet) -> dict[str, Any]:
    """The JSON schema of a structured sample: the seeds' keys, typed as in the first seed, all required."""
    if not seeds.structured:
        return {}
    first = seeds.seeds[0].fields or {}
    props = {name: {"type": _json_type(value)} for name, value in first.items()}
    return {"type": "object", "properties": props, "required": list(props)}


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"  # text, and anything nested, is asked for as text
