"""The text of one document (pdf, docx, pptx, html, txt), by page or whole, with well-kept parsers.

- pdf: pypdf, one part per page (its number from 1). An encrypted file opens only when its password is
  empty (an owner-only password); otherwise it is refused, saying to remove the password.
- docx: python-docx, the whole document: its paragraphs, then its tables (a row's cells joined by " | ").
- pptx: python-pptx, one part per slide: the text of its shapes and tables, then its speaker notes.
- html: Beautiful Soup (html.parser): the visible text, with ``script``, ``style``, ``noscript``,
  ``template`` and ``svg`` dropped and block elements on lines of their own; the whole document.
- txt (and ``.md`` inside a zip): the text as UTF-8 (bad bytes replaced), the whole document.

Parts with no text are left out. Parsers are imported when first used: they come with the ``documents``
extra, and a missing one is a DataFormatError saying what to install.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from datamill.core.errors import DataFormatError

#: The most pages (pdf) or slides (pptx) one file may have.
MAX_PAGES = 10_000
#: Signature of an OLE2 compound file: what an encrypted (or a legacy binary) Office file is.
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BLANK_LINES = re.compile(r"\n\s*\n\s*(?:\n\s*)+")
_DROPPED_TAGS = ("script", "style", "noscript", "template", "svg", "head")
_BLOCK_TAGS = (
    *("p", "div", "br", "li", "tr", "td", "th", "table", "ul", "ol", "pre", "blockquote", "section"),
    *("article", "header", "footer", "nav", "aside", "main", "h1", "h2", "h3", "h4", "h5", "h6", "hr"),
)


@dataclass(frozen=True)
class Part:
    """A row's worth of a document: its page (or slide) number, None for a whole document, and its text."""

    page: int | None
    text: str


def document_parts(name: str, fmt: str, data: bytes) -> Iterator[Part]:
    """The parts of a document of format `fmt` held in `data`; `name` is used in errors.

    Raises:
        DataFormatError: the file is not a readable document of that format, is encrypted, or is too long.
    """
    readers = {"pdf": _pdf, "docx": _docx, "pptx": _pptx, "html": _html, "txt": _txt}
    with warnings.catch_warnings():
        # Parser warnings about odd but readable files say nothing about the text, yet fail strict callers.
        warnings.simplefilter("ignore")
        for part in readers[fmt](name, data):
            text = _tidy(part.text)
            if text:
                yield Part(part.page, text)


#: The module each document format is parsed with.
PARSERS = {"pdf": "pypdf", "docx": "docx", "pptx": "pptx", "html": "bs4", "txt": ""}


def parser_installed(fmt: str) -> bool:
    """Whether the parser of `fmt` can be imported (the ``documents`` extra is installed)."""
    import importlib.util

    module = PARSERS[fmt]
    return not module or importlib.util.find_spec(module) is not None


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _library(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DataFormatError(
            module, f"reading documents needs the documents extra: pip install 'datamill[documents]' ({exc})"
        ) from exc


def _pdf(name: str, data: bytes) -> Iterator[Part]:
    pypdf = _library("pypdf")
    errors = pypdf.errors
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DataFormatError(
                name, "the PDF is encrypted with a password: remove the password and upload it again"
            )
        count = len(reader.pages)
    except (errors.PdfReadError, errors.PdfStreamError, ValueError, KeyError, OSError) as exc:
        if isinstance(exc, errors.FileNotDecryptedError | errors.DependencyError):
            raise DataFormatError(
                name, "the PDF is encrypted with a password: remove the password and upload it again"
            ) from exc
        raise DataFormatError(name, f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    _check_pages(name, count, "pages")
    for number in range(count):
        try:
            text = reader.pages[number].extract_text() or ""
        except Exception as exc:  # pypdf raises many types for a damaged page
            raise DataFormatError(
                name, f"page {number + 1} cannot be read ({type(exc).__name__}: {exc})"
            ) from exc
        yield Part(number + 1, text)


def _office_error(name: str, fmt: str, data: bytes, exc: Exception) -> DataFormatError:
    if data.startswith(_OLE):
        why = "it is encrypted with a password or saved in the old binary format: save it unprotected as"
        return DataFormatError(name, f"not a readable {fmt} file: {why} .{fmt}")
    return DataFormatError(name, f"not a readable {fmt} file ({type(exc).__name__}: {exc})")


def _docx(name: str, data: bytes) -> Iterator[Part]:
    docx = _library("docx")
    try:
        document = docx.Document(io.BytesIO(data))
        lines = [p.text for p in document.paragraphs]
        for table in document.tables:
            lines.append("")
            lines += [" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows]
    except Exception as exc:  # python-docx raises zip, XML and its own errors for a broken file
        raise _office_error(name, "docx", data, exc) from exc
    yield Part(None, "\n".join(lines))


def _pptx(name: str, data: bytes) -> Iterator[Part]:
    pptx = _library("pptx")
    try:
        slides = list(pptx.Presentation(io.BytesIO(data)).slides)
    except Exception as exc:  # python-pptx raises zip, XML and its own errors for a broken file
        raise _office_error(name, "pptx", data, exc) from exc
    _check_pages(name, len(slides), "slides")
    for number, slide in enumerate(slides, start=1):
        lines = [text for shape in slide.shapes for text in _shape_text(shape)]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text
            if notes.strip():
                lines += ["", f"Notes: {notes}"]
        yield Part(number, "\n".join(lines))


def _shape_text(shape: Any) -> Iterator[str]:
    if getattr(shape, "has_text_frame", False) and shape.text_frame.text.strip():
        yield shape.text_frame.text
    if getattr(shape, "has_table", False):
        for row in shape.table.rows:
            yield " | ".join(cell.text.strip() for cell in row.cells)
    for inner in getattr(shape, "shapes", ()):  # a group shape
        yield from _shape_text(inner)


def _html(name: str, data: bytes) -> Iterator[Part]:
    bs4 = _library("bs4")
    soup = bs4.BeautifulSoup(data, "html.parser")
    for tag in soup(list(_DROPPED_TAGS)):
        tag.decompose()
    for tag in soup(list(_BLOCK_TAGS)):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = (" ".join(line.split()) for line in soup.get_text().split("\n"))
    yield Part(None, "\n".join(lines))


def _txt(name: str, data: bytes) -> Iterator[Part]:
    yield Part(None, data.decode("utf-8", errors="replace").lstrip("\ufeff"))


def _check_pages(name: str, count: int, unit: str) -> None:
    if count > MAX_PAGES:
        raise DataFormatError(name, f"it has {count} {unit}, more than the limit of {MAX_PAGES}")
