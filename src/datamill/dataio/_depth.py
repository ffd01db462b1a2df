"""A guard on how deeply a JSON document nests, checked on the raw bytes before the parser sees them.

The streaming JSON parser builds a path string for every event (``item.item.item...``), so memory grows with
the square of the nesting depth: a few hundred kilobytes of ``[[[[...`` would take gigabytes. Real records
nest a few levels; `JsonDepthGuard` fails the read past `MAX_JSON_DEPTH`.

It follows strings across chunk boundaries (brackets inside strings do not count) with byte operations
that run in C: escaped backslashes and quotes are cut out, everything but quotes and brackets is dropped,
what is left is split at quotes (every other piece is inside a string) and the brackets outside strings are
kept; a Python loop runs only when they might pass the limit.
"""

from __future__ import annotations

from itertools import accumulate

from datamill.core.errors import DataFormatError

#: Deepest nesting of arrays and objects a JSON file may have (the JSONL reader's parser allows 1024).
MAX_JSON_DEPTH = 512

_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_OPEN = frozenset(b"[{")


class JsonDepthGuard:
    """Tracks the nesting depth over successive chunks of one JSON document."""

    def __init__(self, path: str, limit: int = MAX_JSON_DEPTH) -> None:
        self._path = path
        self._limit = limit
        self.depth = 0
        self._in_string = False
        self._carry = b""  # a backslash that ended the last chunk: it escapes this chunk's first byte

    def feed(self, chunk: bytes) -> None:
        """Account for the next chunk; raises DataFormatError when the nesting passes the limit."""
        data = self._carry + chunk
        body = data.rstrip(b"\\")
        self._carry = b"\\" if (len(data) - len(body)) % 2 else b""
        if b"\\" in body:  # escaped backslashes, then escaped quotes, are not structure
            body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
        parts = body.translate(None, _NOT_STRUCTURE).split(b'"')
        outside = parts[1::2] if self._in_string else parts[0::2]
        if len(parts) % 2 == 0:
            self._in_string = not self._in_string
        brackets = b"".join(outside)
        opened = brackets.count(b"[") + brackets.count(b"{")
        if self.depth + opened > self._limit and self.depth + _peak_bound(brackets) > self._limit:
            steps = (1 if b in _OPEN else -1 for b in brackets)
            if max(accumulate(steps, initial=self.depth)) > self._limit:
                raise DataFormatError(
                    self._path, f"the JSON nests arrays and objects more than {self._limit} levels deep"
                )
        self.depth += 2 * opened - len(brackets)


def _peak_bound(brackets: bytes) -> int:
    """An upper bound of how far ``brackets`` rises above its starting depth, found without a Python loop.

    Each replace cuts innermost empty pairs (``[]`` or ``{}``), which rose one level above what is left; what
    is left after the replaces rises at most by the openers it holds.
    """
    cuts = 0
    for _ in range(8):
        shorter = brackets.replace(b"[]", b"")
        cuts += shorter != brackets
        shortest = shorter.replace(b"{}", b"")
        cuts += shortest != shorter
        if shortest == brackets:
            break
        brackets = shortest
    return brackets.count(b"[") + brackets.count(b"{") + cuts


def _odd_trailing_backslashes(data: bytes) -> bool:
    return (len(data) - len(data.rstrip(b"\\"))) % 2 == 1
