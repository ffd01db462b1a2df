r"""Token counting for estimates: the bundled model's vocabulary when available, else a characters/4 rule.

A `Tokenizer` counts a text (`count`) and a chat request's messages (`count_messages`). Chat formats wrap each
message in a few tokens of markup (role markers, separators) and prime the reply with a few more; the message
count adds `MESSAGE_OVERHEAD_TOKENS` per message and `REPLY_PRIMER_TOKENS` per request. Those are the ChatML
numbers (``<|im_start|>role\n ... <|im_end|>\n`` and ``<|im_start|>assistant\n``), which SmolLM2 uses and
OpenAI documents for its chat models (3–4 per message); Anthropic and Gemini are in the same range.

- `LlamaVocabTokenizer` loads only the vocabulary of the bundled SmolLM2 GGUF (``vocab_only``: about 0.1 s, no
  weights) on its first count and tokenises with it, so for the bundled model the count is exact up to the
  chat-markup constants (within a token or two per message, measured). It remembers the count of each text
  it has seen (an estimate renders the same instructions and few-shot turns for every sample row), and
  `LlamaVocabTokenizer.release` frees the vocabulary (about 18 MB) and hands the freed heap back to the
  operating system, so a run does not carry it after planning.
- `HeuristicTokenizer` counts ``ceil(characters / 4)``, the usual rule for English with GPT-style BPE
  vocabularies; it needs nothing installed.
- `default_tokenizer` picks the first when llama-cpp-python and the weights are installed, else the second.

**Provider tokenizers differ**, so a count made with one vocabulary is an approximation of what another
provider bills. For English prose, SmolLM2's 49k-token BPE, OpenAI's o200k and Gemini's SentencePiece agree
within about ±10%; Anthropic's tokenizer counts roughly 10–30% more tokens for the same text. Code, numbers
and non-Latin scripts spread further (the characters/4 rule undercounts Chinese or Japanese by 2–4×, where a
character is often a token or more). Treat an estimate's token counts as ±15% for English, wider otherwise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import importlib.util
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from datamill.core.errors import ConfigError
from datamill.llm.providers.local import LLAMA_LOCK, llama_class, load_llama, resolve_model_path
from datamill.llm.types import Message

#: Markup tokens around each chat message (ChatML: ``<|im_start|>``, role, newline, ``<|im_end|>``, newline).
MESSAGE_OVERHEAD_TOKENS = 5
#: Tokens that prime the reply (ChatML: ``<|im_start|>assistant\n``) plus a start-of-text token.
REPLY_PRIMER_TOKENS = 4
#: Characters per token of the heuristic: English text under GPT-style BPE vocabularies.
CHARS_PER_TOKEN = 4
#: The model whose vocabulary `default_tokenizer` loads.
BUNDLED_VOCAB = "bundled:smollm2"
#: Texts whose counts a `LlamaVocabTokenizer` remembers (the memo is cleared when it is full).
COUNT_MEMO_SIZE = 4096


class Tokenizer(Protocol):
    """Counts tokens the way a model would see them."""

    def count(self, text: str) -> int:
        """Tokens in ``text`` (no special tokens)."""
        ...

    def count_messages(self, messages: Sequence[Message]) -> int:
        """Tokens a chat request's messages take, chat markup included."""
        ...


def count_chat(tokenizer: Tokenizer, messages: Sequence[Message]) -> int:
    """The content tokens of ``messages`` plus the per-message and per-request chat markup."""
    if not messages:
        return 0
    content = sum(tokenizer.count(m.content) for m in messages)
    return content + MESSAGE_OVERHEAD_TOKENS * len(messages) + REPLY_PRIMER_TOKENS


class HeuristicTokenizer:
    """``ceil(len(text) / 4)`` tokens: no dependencies, right on average for English, wrong for CJK."""

    def count(self, text: str) -> int:
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def count_messages(self, messages: Sequence[Message]) -> int:
        return count_chat(self, messages)


class LlamaVocabTokenizer:
    """Counts with the vocabulary of a GGUF model (the bundled SmolLM2 by default), loaded on first use.

    Args:
        model: ``bundled:<name>`` or a GGUF path (as in a ``local`` route's ``model``).

    Raises:
        ConfigError: on the first count, when llama-cpp-python, the weights package or the file is missing.
    """

    def __init__(self, model: str = BUNDLED_VOCAB) -> None:
        self.model = model
        self._vocab: Any = None
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def count(self, text: str) -> int:
        if not text:
            return 0
        known = self._counts.get(text)
        if known is not None:
            return known
        tokens = len(self._load().tokenize(text.encode("utf-8"), add_bos=False, special=False))
        if len(self._counts) >= COUNT_MEMO_SIZE:
            self._counts.clear()
        self._counts[text] = tokens
        return tokens

    def count_messages(self, messages: Sequence[Message]) -> int:
        return count_chat(self, messages)

    def release(self) -> None:
        """Free the vocabulary and the remembered counts; a later count loads the vocabulary again."""
        with self._lock:
            vocab, self._vocab = self._vocab, None
            self._counts = {}
        if vocab is not None:
            with LLAMA_LOCK:
                vocab.close()
            del vocab
            trim_heap()

    def _load(self) -> Any:
        with self._lock:
            if self._vocab is None:
                self._vocab = _load_vocab(resolve_model_path(self.model))
            return self._vocab


def _load_vocab(path: Path) -> Any:
    try:
        llama = llama_class()
    except ImportError as exc:
        raise ConfigError(
            "counting with a model vocabulary needs llama-cpp-python, which is not installed"
        ) from exc
    try:
        return load_llama(llama, model_path=str(path), vocab_only=True)
    except ValueError as exc:
        raise ConfigError(f"llama.cpp cannot read the vocabulary of {path}: {exc}") from exc


def trim_heap() -> None:
    """Hand the C heap's free pages back to the operating system (glibc's ``malloc_trim``; elsewhere a no-op).

    llama.cpp frees a vocabulary with ``free``, which keeps the pages in the process; trimming returns them.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return
    trim(0)


def default_tokenizer() -> Tokenizer:
    """The bundled model's vocabulary when llama-cpp-python and its weights are installed, else the heuristic.

    Only checks that both are present; the vocabulary itself loads on the first count.
    """
    if importlib.util.find_spec("llama_cpp") is None:
        return HeuristicTokenizer()
    try:
        resolve_model_path(BUNDLED_VOCAB)
    except ConfigError:
        return HeuristicTokenizer()
    return LlamaVocabTokenizer(BUNDLED_VOCAB)
