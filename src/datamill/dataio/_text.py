"""Text-file plumbing for the text formats: encoding sniffing, head samples, numbered lines, UTF-8 checks.

Encoding rule, in order: an explicit encoding wins; else a byte-order mark decides (UTF-8, UTF-16, UTF-32);
else UTF-8 if the head sample decodes as UTF-8; else charset-normalizer's best guess on the head sample
(cp1252 when it rates that as likely as its pick). A file whose head is UTF-8 but which holds a bad byte
further on is reported as invalid UTF-8 with its line and byte offset, because guessing again at that point
would silently change how the earlier rows were read.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from datamill.core.errors import DataFormatError

HEAD_BYTES = 64 * 1024
_CHUNK_BYTES = 1 << 20
_UTF8 = ("utf-8", "utf-8-sig")
_WESTERN = "cp1252"
_CHAOS_TIE = 0.01

# Longest marks first: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class TextSample:
    """The decoded head of a text file.

    Attributes:
        encoding: The Python codec name the file will be read with.
        text: The head, decoded; cut after its last complete line unless it is the whole file.
        complete: True when the sample is the whole file.
    """

    encoding: str
    text: str
    complete: bool

    @property
    def is_utf8(self) -> bool:
        return is_utf8(self.encoding)


def is_utf8(encoding: str) -> bool:
    """Whether `encoding` (a normalised codec name) reads plain bytes as UTF-8."""
    return encoding in _UTF8


def normalise_encoding(path: str, encoding: str) -> str:
    """Return the canonical codec name for `encoding`, or raise if Python does not know it."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise DataFormatError(path, f"unknown text encoding {encoding!r}") from None
    return {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig"}.get(name, name)


def sniff_encoding(path: str, head: bytes, complete: bool) -> str:
    """Guess the encoding of a file from its first bytes (see the module docstring for the rule)."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    return _guess_legacy_encoding(path, head)


_NO_ENCODING = "cannot detect the text encoding: the file may not be text; save it as UTF-8 text"
_SIGNATURES = (
    (b"PAR1", "a Parquet file"),
    (b"PK\x03\x04", "a zip archive (an xlsx workbook is one)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
)


def _binary_hint(head: bytes) -> str | None:
    """What a binary file really is, when its first bytes say so: the extension lied."""
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            return f"this is {kind}, not text: give the file its real extension, or export it as text"
    return None


def _guess_legacy_encoding(path: str, head: bytes) -> str:
    # Imported here: charset-normalizer loads sizeable tables and most files never need it.
    from charset_normalizer import from_bytes

    matches = from_bytes(head)
    best = matches.best()
    if best is None or not best.encoding:
        raise DataFormatError(path, _binary_hint(head) or _NO_ENCODING)
    # On short or mixed Western samples charset-normalizer often rates cp1252 level with cp1250 and kin, and
    # picks one of those; cp1252 (which has all the Latin-1 letters) is the likelier origin, so it wins ties.
    for match in matches:
        if match.chaos <= best.chaos + _CHAOS_TIE and _WESTERN in (
            match.encoding,
            *match.could_be_from_charset,
        ):
            return _WESTERN
    return normalise_encoding(path, best.encoding)


def read_sample(path: str, encoding: str | None, size: int = HEAD_BYTES) -> TextSample:
    """Read and decode the head of `path`, sniffing the encoding unless one is given."""
    with open(path, "rb") as f:
        head = f.read(size + 1)
    complete = len(head) <= size
    head = head[:size]
    enc = normalise_encoding(path, encoding) if encoding else sniff_encoding(path, head, complete)
    text = codecs.getincrementaldecoder(enc)(errors="replace").decode(head, final=complete)
    if not complete and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    return TextSample(encoding=enc, text=text, complete=complete)


def check_not_blank(path: str, sample: TextSample) -> None:
    """Raise "file is empty" for a file of zero bytes or only whitespace."""
    if sample.complete and not sample.text.strip():
        detail = "0 bytes" if not sample.text else "only whitespace"
        raise DataFormatError(path, f"file is empty ({detail})")


def invalid_utf8(path: str, line: int, offset: int) -> DataFormatError:
    """The error for a byte that is not UTF-8 in a file read as UTF-8."""
    return DataFormatError(
        path,
        f"invalid UTF-8 at byte offset {offset}; re-save the file as UTF-8, or pass its real encoding "
        "explicitly (for example encoding='cp1252')",
        line=line,
    )


def find_invalid_utf8(path: str) -> tuple[int, int] | None:
    """Return (line, byte offset) of the first byte sequence in `path` that is not UTF-8, or None."""
    line, base, pending = 1, 0, b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK_BYTES)
            data = pending + chunk
            try:
                data.decode("utf-8")
                good, pending = len(data), b""
            except UnicodeDecodeError as exc:
                if chunk and exc.reason == "unexpected end of data":
                    # A character split across two chunks: carry its first bytes over.
                    good, pending = exc.start, data[exc.start :]
                else:
                    return line + data.count(b"\n", 0, exc.start), base + exc.start
            line += data.count(b"\n", 0, good)
            base += good
            if not chunk:
                return None


def numbered_lines(path: str, f: BinaryIO, encoding: str) -> Iterator[tuple[int, int, bytes]]:
    """Yield (line number, byte offset, line as UTF-8 bytes without its line ending) for each line of `f`.

    UTF-8 files are passed through unchecked (callers validate the bytes they use, which is where a bad byte
    gets its line number); other encodings are decoded and re-encoded as UTF-8, and a byte the encoding cannot
    decode raises a DataFormatError saying after which line.
    """
    if is_utf8(encoding):
        offset = 0
        for number, raw in enumerate(f, start=1):
            line = raw.rstrip(b"\r\n")
            skip = len(codecs.BOM_UTF8) if number == 1 and line.startswith(codecs.BOM_UTF8) else 0
            yield number, offset + skip, line[skip:]
            offset += len(raw)
        return
    text = io.TextIOWrapper(f, encoding=encoding, newline="\n")
    number = 0
    try:
        for raw_text in text:
            number += 1
            yield number, -1, raw_text.rstrip("\r\n").encode("utf-8")
    except UnicodeDecodeError as exc:
        # The wrapper decodes ahead in chunks, so the bad byte is somewhere after the last line handed out.
        raise DataFormatError(
            path,
            f"cannot decode the text as {encoding} after line {number} ({exc.reason}); pass the right "
            "encoding explicitly (encoding=...)",
        ) from exc
    finally:
        text.detach()


class Utf8Reader:
    """A binary file-like object that reads a file in any encoding and hands out UTF-8 bytes (for ijson)."""

    def __init__(self, f: BinaryIO, encoding: str) -> None:
        self._text = io.TextIOWrapper(f, encoding=encoding, newline="")

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes with read(0) to learn whether the stream is bytes or text
            return b""
        return self._text.read(size if size > 0 else -1).encode("utf-8")
