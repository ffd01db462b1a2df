"""Chat mode: regenerate every assistant turn of a conversation, one by one, in the blueprint's voice.

Each assistant turn is rewritten given the conversation before it (the user turns as they were, the
assistant turns as already rewritten), so later answers stay consistent with earlier ones. A conversation that
ends with a user turn gets a new final answer. The result is ``enhanced_chat``; ``enhanced_prompt`` and
``enhanced_completion`` are its last user and assistant turns, so reasoning, pairs and safety apply to the
final exchange. The row's own system messages (a persona such as "You are a pirate.") go into every request,
after the run's system prompt (blueprint and length guidance), and stay at the head of ``enhanced_chat``:
answers are written under the same instructions the output pairs them with. Rephrase does not apply in chat
mode. The row's images (an image column) go with the first
user turn, where the conversation starts, in every request of the conversation. Each rewritten turn is checked
for instruction injection (`datamill.steps.injection`): one repair, then the row is rejected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from datamill.llm.types import ChatRequest, ImagePart, Message
from datamill.steps.base import Row, RowRejected, RowStep, StepContext
from datamill.steps.completion import answer_budget, length_guidance
from datamill.steps.images import row_images
from datamill.steps.injection import chat_checked, injection_reason
from datamill.steps.templates import load_template

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle


class ChatCompletion(RowStep):
    """Writes ``enhanced_chat`` from ``_chat``: one model call per assistant turn."""

    name: ClassVar[str] = "completion"
    model: ModelHandle
    input_columns = ("_chat", "_images")
    output_columns = ("enhanced_chat", "enhanced_prompt", "enhanced_completion")

    def __init__(
        self,
        model: ModelHandle,
        *,
        blueprint: str | None = None,
        token_range: tuple[int, int] | None = None,
        temperature: float = 0.7,
    ) -> None:
        self.model = model
        self.system = load_template("chat_system").render(
            blueprint=blueprint or "", length_guidance=length_guidance(token_range)
        )
        self.max_tokens, self.expected_output_tokens = answer_budget(token_range)
        self.temperature = temperature

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """One request per assistant turn, as if each turn were rewritten to itself (for estimates)."""
        chat = row.get("_chat") or []
        images = row_images(row)
        system = row_system(chat)
        turns = [m for m in chat if m["role"] != "system"]
        requests = []
        for i, message in enumerate(turns):
            if message["role"] == "assistant":
                requests.append(self._request(turns[:i], images, system))
        if turns and turns[-1]["role"] == "user":
            requests.append(self._request(turns, images, system))
        return requests

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        chat: list[dict[str, str]] = row.get("_chat") or []
        images = row_images(row)
        system = row_system(chat)
        out: list[dict[str, str]] = []
        for message in chat:
            if message["role"] == "assistant":
                out.append({"role": "assistant", "content": await self._answer(out, images, system)})
            elif message["role"] == "user":
                out.append(dict(message))
        if out and out[-1]["role"] == "user":
            out.append({"role": "assistant", "content": await self._answer(out, images, system)})
        row["enhanced_chat"] = [m for m in chat if m["role"] == "system"] + out
        row["enhanced_prompt"] = next(m["content"] for m in reversed(out) if m["role"] == "user")
        row["enhanced_completion"] = out[-1]["content"]

    async def _answer(
        self, history: list[dict[str, str]], images: tuple[ImagePart, ...], system: tuple[Message, ...]
    ) -> str:
        checked = await chat_checked(self.model, self._request(history, images, system), tag=self.name)
        if checked.finding is not None:
            raise RowRejected(injection_reason(self.name, checked.finding))
        text = checked.text
        if not text:
            raise RowRejected("completion: the model returned an empty chat turn")
        return text

    def _request(
        self,
        history: list[dict[str, str]],
        images: tuple[ImagePart, ...] = (),
        system: tuple[Message, ...] = (),
    ) -> ChatRequest:
        turns = tuple(
            Message("user" if m["role"] == "user" else "assistant", m["content"])
            for m in history
            if m["role"] != "system"
        )
        first_user = next((i for i, turn in enumerate(turns) if turn.role == "user"), None)
        if images and first_user is not None:
            turn = turns[first_user]
            turns = (*turns[:first_user], Message("user", turn.content, images), *turns[first_user + 1 :])
        return ChatRequest(
            (*self.system, *system, *turns), max_tokens=self.max_tokens, temperature=self.temperature
        )


def row_system(chat: list[dict[str, str]]) -> tuple[Message, ...]:
    """The conversation's own system messages (non-empty ones), in order."""
    return tuple(
        Message("system", m["content"]) for m in chat if m["role"] == "system" and str(m["content"]).strip()
    )
