"""Trajectory extension: the user's next message in each conversation, written to ``extended_prompt``.

The conversation is read from the mapped columns: in chat mode ``_chat`` (the parsed chat column); in
prompt mode ``original_prompt`` (a list of ``{"role", "content"}`` turns, as JSON text or as a list, or
plain text read as one user turn) followed by ``original_completion`` as the assistant's reply. A
conversation must end on the assistant's reply (the user speaks next); one that ends on a user turn, or has
no assistant reply, is rejected with that reason rather than given a message that answers nothing.

The model sees the conversation as ``User wrote: content`` lines and writes one message
(``steps/prompts/extend_trajectory.yaml``). The reply is cleaned of a ``user:`` label and wrapping quotes,
checked for instruction injection as a prompt (`datamill.steps.injection`: one repair, then the row is
rejected), and an empty reply rejects the row, naming why. With a language detector, the message must be in
the language of the conversation's user turns (judged only when they are long enough and the detector is
confident; `datamill.text.langid.check_language`): a message in another language is asked for once more,
naming the language, then the row is rejected with what was detected. Nothing else of the row changes.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from datamill.core.languages import language_name
from datamill.llm.types import ChatRequest
from datamill.steps.base import Row, RowRejected, RowStep, StepContext
from datamill.steps.injection import chat_checked, injection_reason
from datamill.steps.mapping import parse_chat
from datamill.steps.templates import load_template
from datamill.text.langid import MIN_CONFIDENCE, MIN_LETTERS, check_language, count_letters

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle
    from datamill.text.langid import LanguageDetector

#: Typical length of a follow-up message in tokens.
EXPECTED_OUTPUT_TOKENS = 50
#: The conversation shown to the model is cut to its last characters beyond this (the latest turns matter).
MAX_CONVERSATION_CHARS = 24_000
OUTPUT_COLUMN = "extended_prompt"

_LABEL = re.compile(r"^(user|user wrote|next message|user's next message)\s*:\s*", re.IGNORECASE)
#: How each role is named in the conversation shown to the model.
_SPEAKER = {"user": "User", "assistant": "Assistant"}


class ExtendTrajectory(RowStep):
    """Writes ``extended_prompt``: the user's next message in the row's conversation (module docstring)."""

    name: ClassVar[str] = "extend_trajectory"
    model: ModelHandle
    input_columns = ("_chat", "original_prompt", "original_completion")
    output_columns = (OUTPUT_COLUMN,)
    expected_output_tokens = EXPECTED_OUTPUT_TOKENS

    def __init__(
        self,
        model: ModelHandle,
        detector: LanguageDetector | None = None,
        *,
        max_tokens: int = 256,
        temperature: float = 0.7,
    ) -> None:
        self.model = model
        self.detector = detector
        self.template = load_template("extend_trajectory")
        self.max_tokens = max_tokens
        self.temperature = temperature

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """The request sent for ``row``; none when its conversation cannot be extended."""
        try:
            turns = conversation(row)
        except RowRejected:
            return []
        return [self._request(turns)]

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        turns = conversation(row)
        language = self._language(turns)
        note = ""
        for _attempt in range(2):
            checked = await chat_checked(
                self.model, self._request(turns, note), tag=self.name, clean=clean_message, prompt_like=True
            )
            if checked.finding is not None:
                raise RowRejected(injection_reason(self.name, checked.finding))
            if not checked.text:
                raise RowRejected(f"{self.name}: the model returned an empty message")
            verdict = (
                check_language(self.detector, checked.text, language)
                if self.detector is not None and language is not None
                else None
            )
            if verdict is None or verdict.passed:
                row[OUTPUT_COLUMN] = checked.text
                return
            name = language_name(verdict.expected)
            note = f"Your previous message was not in {name}: write the user's next message in {name} only."
        assert verdict is not None
        raise RowRejected(
            f"{self.name}: failed the language check twice; the message was {verdict.describe()}"
        )

    def _language(self, turns: list[dict[str, str]]) -> str | None:
        """The language of the user turns, when they are long enough and the detector is confident."""
        if self.detector is None:
            return None
        text = "\n".join(t["content"] for t in turns if t["role"] == "user")
        if count_letters(text) < MIN_LETTERS:
            return None
        code, confidence = self.detector.detect(text)
        return code if confidence >= MIN_CONFIDENCE and code != "und" else None

    def _request(self, turns: list[dict[str, str]], retry_note: str = "") -> ChatRequest:
        # "User wrote:" rather than "user:": a role-turn prefix in the request would excuse one in the reply
        # (`find_injection` ignores a rule the source matches), and the injection check would see nothing.
        text = "\n".join(
            f"{_SPEAKER.get(t['role'], t['role'].capitalize())} wrote: {t['content']}"
            for t in turns
            if t["role"] != "system"
        )
        if len(text) > MAX_CONVERSATION_CHARS:
            text = "…" + text[-MAX_CONVERSATION_CHARS:]
        messages = self.template.render(conversation=text, retry_note=retry_note)
        return ChatRequest(
            messages,
            max_tokens=self.max_tokens,
            temperature=min(1.0, self.temperature + 0.2) if retry_note else self.temperature,
            seed=1 if retry_note else None,
        )

    def estimate_output_tokens(self, row: Row) -> int:
        return min(self.max_tokens, EXPECTED_OUTPUT_TOKENS)


def conversation(row: Row) -> list[dict[str, str]]:
    """The row's conversation as turns, ending on the assistant's reply; RowRejected when it cannot be."""
    chat = row.get("_chat")
    if chat:
        turns = [dict(t) for t in chat]
    else:
        turns = _prompt_turns(row.get("original_prompt"))
        completion = row.get("original_completion")
        if isinstance(completion, str) and completion.strip():
            turns.append({"role": "assistant", "content": completion})
    spoken = [t for t in turns if t["role"] != "system"]
    if not spoken or spoken[-1]["role"] != "assistant" or not spoken[-1]["content"].strip():
        raise RowRejected(
            "extend_trajectory: the conversation does not end on the assistant's reply, so there is no "
            "user turn to write next (map the reply as completion, or end the chat on an assistant turn)"
        )
    return turns


def _prompt_turns(value: Any) -> list[dict[str, str]]:
    """The turns of a prompt cell: a list of turns (JSON, or a list written as text), else one user turn."""
    if not isinstance(value, str) or not value.strip():
        raise RowRejected("extend_trajectory: the prompt is empty")
    text = value.strip()
    if text.startswith("["):
        parsed: Any = None
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            try:
                parsed = ast.literal_eval(text)  # a list cell written out as Python's repr
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                parsed = None
        if isinstance(parsed, list):
            return parse_chat(parsed)
    return [{"role": "user", "content": value}]


def clean_message(text: str) -> str:
    """Strip a label and wrapping quotes that models add around the message."""
    text = _LABEL.sub("", text.strip())
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”":
        text = text[1:-1].strip()
    return text
