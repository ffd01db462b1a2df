"""A simple model of the providers' prompt caches, so usage carries cached-token fields.

- Automatic caching (OpenAI, Gemini): prompts are cut into blocks of ``block_tokens`` tokens. A request
  reads from the cache the longest run of whole leading blocks that an earlier request of the same model
  already sent, provided it is at least ``min_tokens`` long; its own leading blocks are then cached.
- Explicit caching (Anthropic): only the prompt up to the last ``cache_control`` breakpoint is cached. If an
  earlier request of the same model had the same prefix it is read (``cache_read_input_tokens``); otherwise
  it is written (``cache_creation_input_tokens``); prefixes under ``min_tokens`` are not cached.

Entries never expire (the providers keep them for minutes; a test run is shorter).
"""

from __future__ import annotations

import hashlib

from datamill.llm.simulator.formats import tokens


class PrefixCache:
    """Which prompt prefixes each model has seen."""

    def __init__(self, *, block_tokens: int = 128, min_tokens: int = 1024) -> None:
        self.block_tokens = block_tokens
        self.min_tokens = min_tokens
        self._seen: set[bytes] = set()

    def clear(self) -> None:
        self._seen.clear()

    def automatic(self, model: str, text: str) -> int:
        """Tokens of ``text`` read from the cache; caches its leading blocks."""
        chars = self.block_tokens * 4
        digest = hashlib.blake2b(model.encode() + b"\x00")
        hit_blocks = 0
        missed = False
        for block in range(len(text) // chars):
            digest.update(text[block * chars : (block + 1) * chars].encode())
            key = digest.copy().digest()
            if not missed and key in self._seen:
                hit_blocks = block + 1
            else:
                missed = True
                self._seen.add(key)
        cached = hit_blocks * self.block_tokens
        return cached if cached >= self.min_tokens else 0

    def explicit(self, model: str, text: str, breakpoint: int | None) -> tuple[int, int]:
        """(tokens read, tokens written) for a prompt cached up to ``breakpoint`` characters."""
        if breakpoint is None:
            return 0, 0
        prefix = text[:breakpoint]
        size = tokens(prefix)
        if size < self.min_tokens:
            return 0, 0
        key = hashlib.blake2b(b"explicit\x00" + model.encode() + b"\x00" + prefix.encode()).digest()
        if key in self._seen:
            return size, 0
        self._seen.add(key)
        return 0, size
