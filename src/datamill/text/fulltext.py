"""A local full-text index over documents the user supplies: the embedded default `Search` for grounding.

Documents are a directory (walked recursively, hidden entries skipped, other file types ignored) or a list of
files and directories, of the types in `DOCUMENT_TYPES`:

- ``.txt``, ``.md``, ``.markdown``, ``.rst``: plain text, one document per file;
- ``.html``, ``.htm``: the text outside ``script``/``style``, tags stripped with the stdlib ``html.parser``;
- ``.jsonl``: one document per line, from a text field (``text`` unless told otherwise);
- ``.csv``: one document per row, from a text column (``text`` unless told otherwise);
- ``.pdf``, ``.pptx``: one document per page (slide) with text; ``.docx``: the document; read with the parsers
  of `datamill.dataio` (the ``documents`` extra: without it these files are skipped in a folder).

A file's source name is ``<directory name>/<path inside it>`` (or the path as given, for a file named
directly); a record of a ``.jsonl``/``.csv`` file is ``<file>#<record number>``, or the value of its
``source_column`` when one is set; a page of a pdf or a slide of a pptx is ``<file>#page=<number>``.

Each document is cut into passages of at most `CHUNK_CHARS` characters on paragraph, then sentence, then word
boundaries; consecutive passages of a document share up to `OVERLAP_CHARS` characters, so a fact that
straddles a cut is whole in at least one of them. Passages live in an SQLite FTS5 table (Porter stemming over
``unicode61``) ranked by FTS5's BM25; a passage's score is ``-bm25()``, so higher is better.

Queries are built from the words (less English stopwords) of the text asked about and never passed through
as FTS syntax (see `build_query`), so quotes, ``*``, ``-``, ``OR`` or parentheses in a user's prompt cannot
break or change one.

An index stores a fingerprint of its documents (resolved paths, sizes and modification times, plus the
indexing settings): `LocalFullTextIndex.build` reuses a file whose fingerprint matches and otherwise rebuilds
it into a temporary file that replaces the old one only when complete. SQLite work is blocking, so `search`
runs it in a thread; one read-only connection is shared under a lock (an FTS5 query takes about a
millisecond).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import math
import os
import re
import sqlite3
import threading
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from datamill.core.errors import ConfigError, DataFormatError
from datamill.dataio import document_parts, parser_installed
from datamill.text.search import Passage

#: File suffix (lower case) → how the file is read.
DOCUMENT_TYPES: dict[str, str] = {
    ".txt": "text",
    ".md": "text",
    ".markdown": "text",
    ".rst": "text",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
    ".csv": "csv",
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
}
#: Types read with the document parsers of `datamill.dataio` (the ``documents`` extra); without it they are
#: skipped in folders and refused when named directly.
PARSED_TYPES = ("pdf", "docx", "pptx")
#: Longest passage, in characters (about 200 tokens: three passages fit a small model's prompt with room).
CHUNK_CHARS = 800
#: Most characters two consecutive passages of one document share.
OVERLAP_CHARS = 150
#: Most distinct words a query keeps (the prompt's come first); bounds the cost of a long prompt's query.
MAX_QUERY_TERMS = 32
#: Bumped when the table layout or the chunking changes, so older index files are rebuilt.
INDEX_VERSION = 1

PathArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

_TOKENIZER = "porter unicode61 remove_diacritics 2"
_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE VIRTUAL TABLE passages USING fts5(source UNINDEXED, text, tokenize = '{_TOKENIZER}');
"""
_SEARCH = "SELECT rowid, source, text, bm25(passages) FROM passages WHERE passages MATCH ? ORDER BY 4 LIMIT ?"
# Per query term: how many passages hold it, and which of the hits (a JSON list of rowids) do.
_TERM = (
    "SELECT count(*), json_group_array(rowid) FILTER (WHERE rowid IN (SELECT value FROM json_each(?))) "
    "FROM passages WHERE passages MATCH ?"
)
_KIND = "datamill-fulltext"
# Letters and digits only: the same runs unicode61 makes tokens of, so no query word is FTS syntax.
_WORD = re.compile(r"[^\W_]+")
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
_SPACES = re.compile(r"\s+")
_STOPWORD_TEXT = """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just let me more
    most my myself no nor not of off on once only or other our ours ourselves out over own please same
    she should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True, slots=True)
class Document:
    """One document's text and the source name it is cited by."""

    source: str
    text: str


class LocalFullTextIndex:
    """An SQLite FTS5 index of passages; create it with `build` or `open`, never directly.

    Attributes:
        path: the index file.
        rebuilt: whether `build` (re)wrote the file rather than reusing an up-to-date one.
        documents: documents indexed.
        passages: passages indexed.
        fingerprint: identifies the indexed documents and settings (a run that resumes can compare it).
    """

    def __init__(self, path: Path, *, rebuilt: bool) -> None:
        meta = read_meta(path)
        if meta is None:
            raise ConfigError(f"{path} is not a datamill grounding index")
        if meta.get("version") != str(INDEX_VERSION):
            raise ConfigError(f"{path} was built by another datamill version; build it again")
        self.path = path
        self.rebuilt = rebuilt
        self.documents = int(meta["documents"])
        self.passages = int(meta["passages"])
        self.fingerprint = meta["fingerprint"]
        self._conn = sqlite3.connect(_readonly_uri(path), uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    @classmethod
    def build(
        cls,
        paths: PathArg,
        db_path: str | os.PathLike[str],
        *,
        text_column: str = "text",
        source_column: str | None = None,
    ) -> LocalFullTextIndex:
        """Index the documents under ``paths`` into ``db_path``, unless it already indexes them unchanged.

        Args:
            paths: a directory or file, or a list of them.
            db_path: the index file (its directory is created).
            text_column: the field or column holding the text in ``.jsonl`` and ``.csv`` files.
            source_column: a field or column naming each record's source (a URL, a title), if any.

        Raises:
            ConfigError: FTS5 is missing, a path does not exist, no document has text, or ``db_path`` is
                some other file.
            DataFormatError: a document cannot be read.
        """
        require_fts5()
        db = Path(db_path)
        files = find_documents(paths)
        settings: dict[str, Any] = {"version": INDEX_VERSION, "chunk": CHUNK_CHARS, "overlap": OVERLAP_CHARS}
        settings |= {"text_column": text_column, "source_column": source_column}
        fingerprint = _fingerprint(files, settings)
        if db.exists() and db.stat().st_size > 0:  # an empty file (a fresh temp file) is free to fill
            meta = read_meta(db)
            if meta is None:
                raise ConfigError(f"{db} exists and is not a datamill grounding index: choose another path")
            if meta.get("fingerprint") == fingerprint:
                return cls(db, rebuilt=False)
        db.parent.mkdir(parents=True, exist_ok=True)
        tmp = db.with_name(f".{db.name}.{uuid.uuid4().hex}.tmp")
        try:
            _write_index(tmp, files, fingerprint, text_column, source_column)
            os.replace(tmp, db)
        finally:
            tmp.unlink(missing_ok=True)
        return cls(db, rebuilt=True)

    @classmethod
    async def abuild(
        cls,
        paths: PathArg,
        db_path: str | os.PathLike[str],
        *,
        text_column: str = "text",
        source_column: str | None = None,
    ) -> LocalFullTextIndex:
        """`build` in a worker thread, for callers already inside an event loop."""
        return await asyncio.to_thread(
            cls.build, paths, db_path, text_column=text_column, source_column=source_column
        )

    @classmethod
    def open(cls, db_path: str | os.PathLike[str]) -> LocalFullTextIndex:
        """Open an index built earlier, as it is (no check that its documents are unchanged).

        Raises:
            ConfigError: FTS5 is missing, or the file is missing or not a current datamill index.
        """
        require_fts5()
        db = Path(db_path)
        if not db.is_file():
            raise ConfigError(f"grounding index not found: {db}")
        return cls(db, rebuilt=False)

    async def search(self, query: str, k: int) -> list[Passage]:
        """Up to ``k`` passages for ``query``, best BM25 score first."""
        return await asyncio.to_thread(self.search_sync, query, k)

    def search_sync(self, query: str, k: int) -> list[Passage]:
        """`search` in the calling thread."""
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        with self._lock:
            rows = self._conn.execute(_SEARCH, (_match(terms), k)).fetchall()
            relevance = self._relevance(terms, [row[0] for row in rows])
        return [Passage(source, text, -rank, relevance.get(rowid, 0.0)) for rowid, source, text, rank in rows]

    def _relevance(self, terms: list[str], rowids: list[int]) -> dict[int, float]:
        """Each hit's share of the query's IDF weight (see the module docstring), from 0 to 1."""
        if not rowids:
            return {}
        ids = json.dumps(rowids)
        total = 0.0
        matched = dict.fromkeys(rowids, 0.0)
        for term in terms:
            count, holders = self._conn.execute(_TERM, (ids, _match([term]))).fetchone()
            weight = 1.0 + math.log((self.passages + 1.0) / (count + 0.5))
            total += weight
            for rowid in json.loads(holders or "[]"):
                matched[rowid] += weight
        return {rowid: (weight / total if total else 0.0) for rowid, weight in matched.items()}

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def query_terms(text: str, max_terms: int = MAX_QUERY_TERMS) -> list[str]:
    """The distinct words of ``text`` that a search looks for: letters and digits, less English stopwords."""
    words = dict.fromkeys(w.casefold() for w in _WORD.findall(unicodedata.normalize("NFKC", text)))
    return [w for w in words if w not in _STOPWORDS][:max_terms]


def word_coverage(query: str, text: str) -> float:
    """The share of ``query``'s search words (`query_terms`) that ``text`` contains, from 0 to 1.

    The relevance of a passage whose backend reports none: unweighted and unstemmed, so stricter than the
    local index's IDF-weighted share. A query with no search word covers nothing (0).
    """
    terms = query_terms(query)
    if not terms:
        return 0.0
    words = {w.casefold() for w in _WORD.findall(unicodedata.normalize("NFKC", text))}
    return sum(term in words for term in terms) / len(terms)


def build_query(text: str, max_terms: int = MAX_QUERY_TERMS) -> str:
    """An FTS5 MATCH expression for ``text``: its distinct words, each quoted, ORed.

    Only runs of letters and digits are kept and each is a quoted string, so FTS5 reads none of them as an
    operator, a column filter or a prefix. English stopwords are dropped: a passage that shares only "the"
    with a prompt does not support an answer to it. A text with no other word gives "" (nothing to search).
    """
    return _match(query_terms(text, max_terms))


def _match(terms: list[str]) -> str:
    return " OR ".join(f'"{term}"' for term in terms)


def require_fts5(conn: Any = None) -> None:
    """Check that SQLite has FTS5 (and the tokenizer the index uses).

    Args:
        conn: the connection to probe (an in-memory one when None).

    Raises:
        ConfigError: FTS5 is not compiled into this Python's SQLite.
    """
    probe = conn if conn is not None else sqlite3.connect(":memory:")
    try:
        probe.execute(f"CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x, tokenize = '{_TOKENIZER}')")
        probe.execute("DROP TABLE temp.fts5_probe")
    except sqlite3.OperationalError as exc:
        raise ConfigError(
            f"the local grounding index needs SQLite with FTS5, which this Python's SQLite "
            f"({sqlite3.sqlite_version}) lacks ({exc}); use a Python built with FTS5, "
            "or configure a search API"
        ) from exc
    finally:
        if conn is None:
            probe.close()


def find_documents(paths: PathArg) -> list[tuple[Path, str]]:
    """The supported files under ``paths`` with their source names, in a stable order.

    Raises:
        ConfigError: a path does not exist, a file named directly has an unsupported type, or none is found.
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    found: dict[Path, str] = {}
    for item in items:
        root = Path(item)
        if root.is_dir():
            for path, name in _walk(root):
                found.setdefault(path.resolve(), name)
        elif root.is_file():
            if not _readable(root):
                raise ConfigError(f"{root}: unsupported document type; supported: {_supported()}")
            found.setdefault(root.resolve(), root.as_posix())
        else:
            raise ConfigError(f"grounding documents not found: {root}")
    if not found:
        raise ConfigError(f"no documents found in {', '.join(map(str, items))}; supported: {_supported()}")
    return list(found.items())


def _walk(root: Path) -> Iterator[tuple[Path, str]]:
    label = root.resolve().name
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(directory, name)
            if not name.startswith(".") and _readable(path):
                yield path, f"{label}/{path.relative_to(root).as_posix()}"


def _readable(path: Path) -> bool:
    kind = DOCUMENT_TYPES.get(path.suffix.lower())
    return kind is not None and _parsed_here(kind)


def _supported() -> str:
    return ", ".join(s for s, kind in DOCUMENT_TYPES.items() if _parsed_here(kind))


def _parsed_here(kind: str) -> bool:
    return kind not in PARSED_TYPES or parser_installed(kind)


def read_documents(
    path: Path, name: str, *, text_column: str = "text", source_column: str | None = None
) -> Iterator[Document]:
    """The documents of one file, by its type (see `DOCUMENT_TYPES`).

    Raises:
        DataFormatError: a ``.jsonl`` line is not a JSON object, or a ``.csv`` file lacks the text column.
    """
    kind = DOCUMENT_TYPES[path.suffix.lower()]
    if kind in PARSED_TYPES:
        for part in document_parts(str(path), kind, path.read_bytes()):
            yield Document(f"{name}#page={part.page}" if part.page is not None else name, part.text)
    elif kind in ("text", "html"):
        text = path.read_text(encoding="utf-8-sig", errors="replace")
        yield Document(name, html_text(text) if kind == "html" else text)
    elif kind == "jsonl":
        yield from _jsonl_documents(path, name, text_column, source_column)
    else:
        yield from _csv_documents(path, name, text_column, source_column)


def _jsonl_documents(path: Path, name: str, text_col: str, source_col: str | None) -> Iterator[Document]:
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise DataFormatError(str(path), f"invalid JSON: {exc}", line=number) from exc
            if not isinstance(record, dict):
                raise DataFormatError(str(path), "each line must be a JSON object", line=number)
            yield from _record(record, f"{name}#{number}", text_col, source_col)


def _csv_documents(path: Path, name: str, text_col: str, source_col: str | None) -> Iterator[Document]:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.DictReader(f)
        if text_col not in (reader.fieldnames or ()):
            raise DataFormatError(str(path), f"no {text_col!r} column (the text column of a document file)")
        try:
            for number, record in enumerate(reader, 1):
                yield from _record(record, f"{name}#{number}", text_col, source_col)
        except csv.Error as exc:
            raise DataFormatError(str(path), str(exc), line=reader.line_num) from exc


def _record(
    record: dict[str, Any], default: str, text_col: str, source_col: str | None
) -> Iterator[Document]:
    text = record.get(text_col)
    if not isinstance(text, str) or not text.strip():
        return  # a record without text has nothing to ground on
    source = record.get(source_col) if source_col else None
    yield Document(source if isinstance(source, str) and source.strip() else default, text)


_BLOCK_TAGS = """address article aside blockquote dd div dl dt figcaption footer form h1 h2 h3 h4 h5 h6 header
    hr li main nav ol p pre section table td th title tr ul"""


class _HtmlText(HTMLParser):
    """Collects the visible text of an HTML page, with a paragraph break at each block element."""

    _SKIP = frozenset({"script", "style", "noscript", "template", "svg"})
    _BLOCKS = frozenset(_BLOCK_TAGS.split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")
        elif tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_text(markup: str) -> str:
    """The visible text of an HTML document, paragraphs separated by blank lines."""
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


def chunk_text(text: str, size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS) -> list[str]:
    """Cut ``text`` into passages of at most ``size`` characters, sharing up to ``overlap`` at each cut.

    Cuts fall between paragraphs where they can, else between sentences, else between words; whitespace
    inside a paragraph is collapsed, and paragraphs within one passage stay separated by a blank line.
    """
    chunks: list[str] = []
    window: list[tuple[str, bool]] = []
    for unit in _units(text, size):
        if window and _joined_len([*window, unit]) > size:
            chunks.append(_join(window))
            window = _tail(window, min(overlap, size - len(unit[0]) - 2))
        window.append(unit)
    if window:
        chunks.append(_join(window))
    return chunks


def _units(text: str, size: int) -> Iterator[tuple[str, bool]]:
    """Pieces no longer than ``size``, each flagged True when it starts a paragraph."""
    for paragraph in _PARAGRAPH.split(text):
        flat = _SPACES.sub(" ", paragraph).strip()
        if not flat:
            continue
        if len(flat) <= size:
            pieces = [flat]
        else:
            pieces = [p for sentence in _SENTENCE_END.split(flat) for p in _split_words(sentence, size)]
        for i, piece in enumerate(pieces):
            yield piece, i == 0


def _split_words(sentence: str, size: int) -> Iterator[str]:
    while len(sentence) > size:
        cut = sentence.rfind(" ", 0, size + 1)
        if cut <= 0:
            cut = size  # one unbroken run longer than a passage: cut inside it
        yield sentence[:cut].strip()
        sentence = sentence[cut:].strip()
    if sentence:
        yield sentence


def _tail(window: list[tuple[str, bool]], budget: int) -> list[tuple[str, bool]]:
    """The last units of ``window`` that fit in ``budget`` characters, never the whole window."""
    tail: list[tuple[str, bool]] = []
    for unit in reversed(window[1:]):
        if _joined_len([unit, *tail]) > budget:
            break
        tail.insert(0, unit)
    return tail


def _join(units: list[tuple[str, bool]]) -> str:
    out = units[0][0]
    for text, new_paragraph in units[1:]:
        out += ("\n\n" if new_paragraph else " ") + text
    return out


def _joined_len(units: list[tuple[str, bool]]) -> int:
    return sum(len(t) for t, _ in units) + sum(2 if p else 1 for _, p in units[1:])


def _fingerprint(files: list[tuple[Path, str]], settings: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path, name in files:
        stat = path.stat()
        digest.update(f"{path}\0{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _write_index(
    db: Path, files: list[tuple[Path, str]], fingerprint: str, text_col: str, source_col: str | None
) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.executescript(_SCHEMA)
        documents = passages = 0
        for path, name in files:
            for doc in read_documents(path, name, text_column=text_col, source_column=source_col):
                chunks = chunk_text(doc.text)
                conn.executemany("INSERT INTO passages VALUES (?, ?)", [(doc.source, c) for c in chunks])
                documents += bool(chunks)
                passages += len(chunks)
        if not passages:
            raise ConfigError(f"no text found in the grounding documents ({len(files)} files)")
        meta = {"kind": _KIND, "version": INDEX_VERSION, "fingerprint": fingerprint}
        meta |= {"documents": documents, "passages": passages, "text_column": text_col}
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
        conn.commit()
        # Merge the FTS b-trees written batch by batch into one: faster queries on a read-only index.
        conn.execute("INSERT INTO passages(passages) VALUES ('optimize')")
        conn.commit()
    finally:
        conn.close()


def read_meta(path: Path) -> dict[str, str] | None:
    """The metadata of a datamill index file, or None when the file is not one."""
    try:
        conn = sqlite3.connect(_readonly_uri(path), uri=True)
        try:
            rows = conn.execute("SELECT key, value FROM meta").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None
    meta = {str(k): str(v) for k, v in rows}
    return meta if meta.get("kind") == _KIND else None


def _readonly_uri(path: Path) -> str:
    return f"{path.resolve().as_uri()}?mode=ro"
