"""Responses: an OpenAI-Responses-style call through datamill's model gateway, stored per tenant on request.

`ResponseService.prepare` checks the request (`response_request`), the tenant's credits and the model, and
gathers the conversation: the chain of stored responses ``previous_response_id`` names (each one's input
and output, oldest first; not their instructions), then this request's input. ``instructions`` and every
``system``/``developer`` message become one system message at the start, with the rows the ``file_search``
tool found when the request lists it (`file_search`). `ResponseService.answer` makes the
call through the gateway (no response cache: two equal requests get two answers) and builds the response
object. What the model sends back decides its status:

| the reply                                   | ``status``   | output                                       |
|---------------------------------------------|--------------|----------------------------------------------|
| an answer                                   | completed    | a message with one ``output_text`` part      |
| a refusal (the provider's, or a refusal sentence) | completed | a message with one ``refusal`` part       |
| cut at ``max_output_tokens``                | incomplete   | none; ``incomplete_details.reason`` says why |
| filtered by the provider                    | incomplete   | none; reason ``content_filter``              |
| empty                                       | failed       | none; ``error.code`` ``empty_reply``         |

Reasoning the model wrote is split off the answer and not returned. A refusal, cut, filtered or empty reply
is retried within the gateway's small budget first. A call the provider could not serve (rate limited,
down, a bad key) raises `ModelError`, which the route answers as 429 or 502.

Every call is charged to the tenant at ``credits_per_usd`` of the price table per USD the provider billed
(retries included); a tenant with no credits left is refused (402) before any call. With ``store: true``
the response and its input items are kept, for ``retrieve``, ``delete``, ``input_items.list`` and later
``previous_response_id``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datamill.core.credits import PriceTable
from datamill.core.errors import (
    ConfigError,
    ContentFilteredError,
    EmptyReplyError,
    RefusalError,
    TruncatedReplyError,
    UnknownModelError,
    ValidationError,
)
from datamill.llm.gateway import Gateway
from datamill.llm.types import ChatRequest, Message, Usage
from datamill.services.adaptation.launch import InsufficientCreditsError
from datamill.services.errors import NotFoundError
from datamill.services.inference.file_search import FileSearch, SearchHit, grounding_text
from datamill.services.inference.models import ModelCatalog
from datamill.services.inference.response_request import InputMessage, ResponseRequest, parse_response_request
from datamill.store import Store, utcnow
from datamill.store import responses as repo
from datamill.store import tenants as tenants_repo
from datamill.store.ids import new_id
from datamill.store.response_models import StoredResponse

#: The longest chain of earlier responses one request may continue.
MAX_CHAIN = 100


class NoCreditsError(InsufficientCreditsError):
    """The tenant has no credits left for a model call (HTTP 402)."""

    def __init__(self, balance: float) -> None:
        super().__init__(needed=0.0, balance=balance)
        self.args = (
            f"insufficient credits: the balance is {balance:g} and a model call needs a positive balance; "
            "ask the operator for more (datamill tenants credit)",
        )

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class PreparedResponse:
    """A checked request with the id it will answer under, its conversation and its input items."""

    id: str
    tenant_id: str
    request: ResponseRequest
    conversation: tuple[Message, ...]
    input_items: list[dict[str, Any]]
    created_at: int
    search: tuple[str, list[SearchHit]] | None = None


class ResponseService:
    """Creates, stores, reads and deletes responses; see the module docstring."""

    def __init__(
        self,
        store: Store,
        models: ModelCatalog,
        gateway_factory: Callable[[], Gateway],
        prices: PriceTable,
        file_search: FileSearch,
    ) -> None:
        self._store, self._models, self._gateway_factory, self._prices = (
            store,
            models,
            gateway_factory,
            prices,
        )
        self._file_search = file_search

    def prepare(self, tenant_id: str, body: Any) -> PreparedResponse:
        """Check a create request and gather its conversation (blocking: it reads the database).

        Raises:
            ValidationError: a bad body, a model the server does not route, or a ``previous_response_id``
                not stored (400).
            NotFoundError: a ``file_search`` dataset id the tenant does not have (404).
            NoCreditsError: the tenant has no credits left (402).
        """
        request = parse_response_request(body)
        try:
            self._models.routing().resolve(request.model)
        except UnknownModelError:
            raise ValidationError.of(
                "model", f"unknown model {request.model!r}: GET /api/v1/models lists the models served"
            ) from None
        except ConfigError as exc:
            raise ValidationError.of("model", f"cannot be used on this server: {exc}") from None
        with self._store.session() as session:
            tenant = tenants_repo.tenant_by_id(session, tenant_id)
            balance = float(tenant.credits) if tenant is not None else 0.0
            history = self._history(session, tenant_id, request.previous_response_id)
        if balance <= 0:
            raise NoCreditsError(balance)
        items = [_input_item(message) for message in request.messages]
        system = [request.instructions] if request.instructions else []
        system += [m.text for m in request.messages if m.role in ("system", "developer")]
        turns = history + [
            Message(role="assistant" if m.role == "assistant" else "user", content=m.text)
            for m in request.messages
            if m.role not in ("system", "developer")
        ]
        if not turns:
            raise ValidationError.of("input", "must hold at least one user or assistant message")
        search = None
        if request.file_search is not None:
            tool = request.file_search
            views = self._file_search.views(tenant_id, tool.dataset_ids)
            query = next((m.text for m in reversed(request.messages) if m.role == "user"), turns[-1].content)
            hits = self._file_search.search(views, query)
            search = (query, hits)
            system.append(grounding_text(hits))
        conversation = ([Message(role="system", content="\n\n".join(system))] if system else []) + turns
        created = int(dt.datetime.now(dt.UTC).timestamp())
        return PreparedResponse(
            new_id("resp"), tenant_id, request, tuple(conversation), items, created, search
        )

    def _history(self, session: Any, tenant_id: str, response_id: str | None) -> list[Message]:
        turns: list[Message] = []
        seen = 0
        while response_id is not None:
            row = repo.get_response(session, tenant_id, response_id)
            if row is None:
                raise ValidationError.of(
                    "previous_response_id",
                    f"no stored response {response_id!r}: only responses created with store: true are kept",
                )
            seen += 1
            if seen > MAX_CHAIN:
                raise ValidationError.of("previous_response_id", f"continues more than {MAX_CHAIN} responses")
            mine = [
                Message(role="assistant" if i["role"] == "assistant" else "user", content=_item_text(i))
                for i in row.input_items
                if i["role"] not in ("system", "developer")
            ]
            answer = row.body.get("output_text")
            if isinstance(answer, str) and answer:
                mine.append(Message(role="assistant", content=answer))
            turns = mine + turns
            response_id = row.previous_response_id
        return turns

    async def answer(self, prepared: PreparedResponse) -> dict[str, Any]:
        """Call the model and build the response object; charge the tenant and store it if asked.

        Raises:
            ModelError: the provider could not serve the call (429 or 502).
        """
        request = prepared.request
        gateway = self._gateway_factory()
        try:
            chat = ChatRequest(
                messages=prepared.conversation,
                max_tokens=request.max_output_tokens,
                temperature=0.7 if request.temperature is None else request.temperature,
            )
            outcome = await _outcome(gateway, request.model, chat)
            billed = gateway.usage.total
            usage, cost = billed.usage, billed.cost_usd
        finally:
            await gateway.aclose()
        credits = round(cost * self._prices.credits_per_usd, 6)
        body = _response_body(prepared, outcome, usage, cost, credits)
        await asyncio.to_thread(self._finish, prepared, body, credits)
        return body

    def _finish(self, prepared: PreparedResponse, body: dict[str, Any], credits: float) -> None:
        with self._store.session() as session:
            if credits > 0:
                tenants_repo.add_credits(session, prepared.tenant_id, -credits)
            if prepared.request.store:
                repo.add_response(
                    session,
                    StoredResponse(
                        id=prepared.id,
                        tenant_id=prepared.tenant_id,
                        model=prepared.request.model,
                        previous_response_id=prepared.request.previous_response_id,
                        body=body,
                        input_items=prepared.input_items,
                        created_at=utcnow(),
                    ),
                )

    def retrieve(self, tenant_id: str, response_id: str) -> dict[str, Any]:
        """A stored response. Raises NotFoundError when the tenant has none with this id."""
        with self._store.session() as session:
            row = repo.get_response(session, tenant_id, response_id)
            if row is None:
                raise NotFoundError("response", response_id)
            return dict(row.body)

    def delete(self, tenant_id: str, response_id: str) -> dict[str, Any]:
        """Delete a stored response. Raises NotFoundError when the tenant has none with this id."""
        with self._store.session() as session:
            if not repo.delete_response(session, tenant_id, response_id):
                raise NotFoundError("response", response_id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    def input_items(
        self, tenant_id: str, response_id: str, *, order: str, limit: int, after: str | None
    ) -> dict[str, Any]:
        """One page of a stored response's input items.

        Raises:
            NotFoundError: the tenant has no stored response with this id.
            ValidationError: ``after`` is not an item of this response.
        """
        with self._store.session() as session:
            row = repo.get_response(session, tenant_id, response_id)
            if row is None:
                raise NotFoundError("response", response_id)
            items = list(row.input_items)
        if order == "desc":
            items.reverse()
        start = 0
        if after is not None:
            ids = [item["id"] for item in items]
            if after not in ids:
                raise ValidationError.of(
                    "after", f"{after!r} is not an input item of response {response_id!r}"
                )
            start = ids.index(after) + 1
        page = items[start : start + limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": start + limit < len(items),
        }


@dataclass(frozen=True)
class _Outcome:
    status: str
    text: str | None = None
    refusal: str | None = None
    incomplete: str | None = None
    error: dict[str, str] | None = None


async def _outcome(gateway: Gateway, model: str, chat: ChatRequest) -> _Outcome:
    try:
        result = await gateway.chat(model, chat, tag="responses")
    except RefusalError as exc:
        return _Outcome("completed", refusal=str(exc))
    except TruncatedReplyError:
        return _Outcome("incomplete", incomplete="max_output_tokens")
    except ContentFilteredError:
        return _Outcome("incomplete", incomplete="content_filter")
    except EmptyReplyError as exc:
        return _Outcome("failed", error={"code": "empty_reply", "message": str(exc)})
    return _Outcome("completed", text=result.text)


def _input_item(message: InputMessage) -> dict[str, Any]:
    part = "output_text" if message.role == "assistant" else "input_text"
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": message.role,
        "content": [{"type": part, "text": message.text}],
    }


def _item_text(item: dict[str, Any]) -> str:
    return "".join(str(part.get("text", "")) for part in item.get("content", []))


def _response_body(
    prepared: PreparedResponse, outcome: _Outcome, usage: Usage, cost: float, credits: float
) -> dict[str, Any]:
    request = prepared.request
    output: list[dict[str, Any]] = []
    tools: list[dict[str, Any]] = []
    if request.file_search is not None:
        tools.append({"type": "file_search", "dataset_ids": request.file_search.dataset_ids})
    if prepared.search is not None:
        query, hits = prepared.search
        output.append(
            {
                "id": new_id("fs"),
                "type": "file_search_call",
                "status": "completed",
                "queries": [query],
                "results": [hit.to_dict() for hit in hits],
            }
        )
    if outcome.text is not None or outcome.refusal is not None:
        part = (
            {"type": "output_text", "text": outcome.text, "annotations": []}
            if outcome.text is not None
            else {"type": "refusal", "refusal": outcome.refusal}
        )
        output.append(
            {
                "id": new_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [part],
            }
        )
    return {
        "id": prepared.id,
        "object": "response",
        "created_at": prepared.created_at,
        "status": outcome.status,
        "model": request.model,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "temperature": request.temperature,
        "previous_response_id": request.previous_response_id,
        "store": request.store,
        "tools": tools,
        "tool_choice": request.tool_choice,
        "output": output,
        "output_text": outcome.text or "",
        "error": outcome.error,
        "incomplete_details": {"reason": outcome.incomplete} if outcome.incomplete else None,
        "usage": {
            "input_tokens": usage.input_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_input_tokens},
            "output_tokens": usage.output_tokens + usage.thinking_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.thinking_tokens},
            "total_tokens": usage.total_tokens,
        },
        "billing": {"cost_usd": cost, "credits": credits},
    }
