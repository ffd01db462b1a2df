"""The extend step on its own: the conversation it reads, and the language rule, with a scripted model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest
from datamill.steps.base import RowRejected, StepContext
from datamill.steps.extend_trajectory import ExtendTrajectory, conversation
from datamill.text.langid import FakeLanguageDetector

SPANISH = "¿Y cuánto tiempo tarda la devolución de mi pedido si lo envío hoy por correo?"
ENGLISH = "And how long does the refund take if I send the parcel back by post today?"
CHAT = [
    {"role": "user", "content": "Quiero devolver mi pedido porque la talla es demasiado grande para mí."},
    {"role": "assistant", "content": "Claro, puede devolverlo en un plazo de treinta días."},
]


def _step(reply: Callable[[ChatRequest], str]) -> tuple[ExtendTrajectory, FakeProvider]:
    fake = FakeProvider(responder=lambda _route, request: reply(request))
    gateway = Gateway(Routing.load(), providers={"fake": fake})
    detector = FakeLanguageDetector({"es": ["quiero", "pedido", "devolución", "cuánto"]}, confidence=0.9)
    return ExtendTrajectory(gateway.model("fake/test"), detector), fake


async def test_a_message_in_the_conversations_language_is_kept() -> None:
    step, fake = _step(lambda _request: SPANISH)
    row: dict[str, Any] = {"_chat": CHAT}
    await step.process_row(row, StepContext())
    assert row["extended_prompt"] == SPANISH
    last_user = fake.calls[0].messages[-1].content
    assert "User wrote: Quiero devolver mi pedido" in last_user
    assert "Assistant wrote: Claro, puede devolverlo" in last_user


async def test_a_message_in_another_language_is_asked_again_then_rejected() -> None:
    step, fake = _step(lambda _request: ENGLISH)
    with pytest.raises(RowRejected, match="failed the language check twice; the message was detected en"):
        await step.process_row({"_chat": CHAT}, StepContext())
    assert len(fake.calls) == 2
    assert "write the user's next message in Spanish only" in fake.calls[1].messages[-1].content


async def test_the_retry_in_the_right_language_is_kept() -> None:
    answers = iter([ENGLISH, SPANISH])
    step, fake = _step(lambda _request: next(answers))
    row: dict[str, Any] = {"_chat": CHAT}
    await step.process_row(row, StepContext())
    assert (row["extended_prompt"], len(fake.calls)) == (SPANISH, 2)


def test_the_conversation_of_prompt_and_completion_columns() -> None:
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    as_json = {"original_prompt": '[{"role": "user", "content": "Hi"}]', "original_completion": "Hello"}
    as_repr = {"original_prompt": "[{'role': 'user', 'content': 'Hi'}]", "original_completion": "Hello"}
    plain = {"original_prompt": "Hi", "original_completion": "Hello"}
    assert conversation(as_json) == conversation(as_repr) == conversation(plain) == turns
    with pytest.raises(RowRejected, match="does not end on the assistant's reply"):
        conversation({"original_prompt": "Hi", "original_completion": ""})
