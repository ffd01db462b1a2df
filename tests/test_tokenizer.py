"""Tokenizers: the characters/4 heuristic, chat markup, and the bundled vocabulary against the real model."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from datamill.core.errors import ConfigError
from datamill.llm.providers.local import LlamaCppProvider
from datamill.llm.types import ChatRequest, Message, Route
from datamill.text.tokenizer import (
    MESSAGE_OVERHEAD_TOKENS,
    REPLY_PRIMER_TOKENS,
    HeuristicTokenizer,
    LlamaVocabTokenizer,
    default_tokenizer,
)
from output_race import write_during

needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"
)


def test_heuristic_counts_four_characters_per_token_rounding_up() -> None:
    tok = HeuristicTokenizer()
    assert tok.count("") == 0
    assert tok.count("abcd") == 1
    assert tok.count("abcde") == 2


def test_message_count_adds_chat_markup_per_message_and_reply() -> None:
    tok = HeuristicTokenizer()
    messages = (Message("system", "abcd" * 3), Message("user", "abcd"))
    assert tok.count_messages(messages) == 3 + 1 + 2 * MESSAGE_OVERHEAD_TOKENS + REPLY_PRIMER_TOKENS
    assert tok.count_messages(()) == 0


def test_vocab_tokenizer_loads_lazily_and_reports_a_missing_file(tmp_path: Path) -> None:
    tok = LlamaVocabTokenizer(str(tmp_path / "missing.gguf"))  # nothing is read yet
    with pytest.raises(ConfigError, match=r"missing\.gguf"):
        tok.count("hello")


@needs_llama
def test_default_tokenizer_uses_the_bundled_vocabulary() -> None:
    tok = default_tokenizer()
    assert isinstance(tok, LlamaVocabTokenizer)
    assert tok.count("hello world") == 2
    assert tok.count("") == 0
    # A vocabulary counts real tokens: a long repeated word is not four characters a token.
    assert tok.count("internationalization " * 10) != HeuristicTokenizer().count("internationalization " * 10)


@needs_llama
def test_vocab_tokenizer_remembers_counts_and_releases_its_vocabulary() -> None:
    tok = LlamaVocabTokenizer()
    text = "Rewrite this request: how do i reset my password"
    first = tok.count(text)
    assert tok.count(text) == first  # the remembered count
    tok.release()
    assert tok._vocab is None
    tok.release()  # releasing twice is harmless
    assert tok.count(text) == first  # loads the vocabulary again
    assert tok._vocab is not None
    tok.release()


@needs_llama
@pytest.mark.local_model
async def test_vocab_message_count_matches_what_the_bundled_model_reads() -> None:
    messages = (
        Message("system", "You rewrite requests so they are clear. Reply with the rewritten request only."),
        Message("user", "Rewrite this request: whats the diffrence between a list and tuple python"),
        Message("assistant", "What is the difference between a list and a tuple in Python?"),
        Message("user", "Rewrite this request: how do i reset my password"),
    )
    route = Route(name="local/smollm2", provider="local", model="bundled:smollm2")
    reply = await LlamaCppProvider(None).complete(route, ChatRequest(messages, max_tokens=1))
    counted = LlamaVocabTokenizer().count_messages(messages)
    # Chat markup is counted by constants; allow a token per message of drift at the message boundaries.
    assert abs(counted - reply.usage.input_tokens) <= len(messages)


_CONCURRENT_LOADS = """
import os, sys, threading
from datamill.text.tokenizer import LlamaVocabTokenizer

def ident(fd):
    stat = os.fstat(fd)
    return (stat.st_dev, stat.st_ino)

before = (ident(1), ident(2), id(sys.stderr))
for _ in range(3):
    barrier = threading.Barrier(6)

    def load():
        tokenizer = LlamaVocabTokenizer()
        barrier.wait()
        tokenizer.count("hello world")
        tokenizer.release()

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
after = (ident(1), ident(2), id(sys.stderr))
with open(sys.argv[1], "w") as out:
    out.write("kept" if before == after else f"lost: {before} -> {after}")
"""


@needs_llama
def test_concurrent_vocabulary_loads_leave_stdout_and_stderr_where_they_were(tmp_path: Path) -> None:
    """llama.cpp's quiet load swaps descriptors 1 and 2; loads on several threads must not lose them."""
    result = tmp_path / "result.txt"
    script = tmp_path / "loads.py"
    script.write_text(_CONCURRENT_LOADS)
    stdout, stderr = tmp_path / "out.txt", tmp_path / "err.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        subprocess.run(
            [sys.executable, str(script), str(result)], stdout=out, stderr=err, check=True, timeout=300
        )
    assert result.read_text() == "kept"


_VOCAB_LOADS = """
    for _ in range(8):
        tokenizer = LlamaVocabTokenizer()
        tokenizer.count("hello world")
        tokenizer.release()
"""


@needs_llama
def test_output_of_other_threads_is_not_lost_while_a_vocabulary_loads(tmp_path: Path) -> None:
    """A server loads its vocabulary on a thread at start: its log lines meanwhile must reach stderr."""
    written, received = write_during(
        tmp_path, "from datamill.text.tokenizer import LlamaVocabTokenizer", _VOCAB_LOADS
    )
    lines = [line for line in received if line.startswith("line ")]
    assert len(lines) == written  # none went to /dev/null
    assert written > 0
