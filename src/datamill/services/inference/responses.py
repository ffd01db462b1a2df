"""Responses: an OpenAI-Responses-style call through datamill's model gateway, stored per tenant on request.

`ResponseService.prepare` checks the request (`response_request`) and the model, and gathers the
conversation: the chain of stored responses ``previous_response_id`` names (each one's input
and output, oldest first; not their instructions), then this request's input. ``instructions`` and every
``system``/``developer`` message become one system message at the start, with the rows the ``file_search``
tool found when the request lists it (`file_search`). `ResponseService.start` begins the
call as a task of its own, which runs to its end whoever waits for it (a client that leaves does not stop
it): it reserves the call's credits, makes the call through the gateway (no response cache: two equal
requests get two answers), builds the response object, and settles the credits. What the model sends back
decides its status:

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

Credits (`response_credits`): before the model is called the call reserves the most it can cost, in one
conditional update of the tenant's balance (402 naming ``max_output_tokens`` when the balance does not cover
it, and nothing is sent to the model); once the call is over it is charged what the provider billed (retries
included, cached input priced as billed) at ``credits_per_usd`` of the price table, and the rest of the
reservation goes back, once, in the transaction that stores the response: also when the call fails or the
client has gone. With ``store: true`` the response and its input items are kept, for ``retrieve``,
``delete``, ``input_items.list`` and later ``previous_response_id``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

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
from datamill.llm.types import ChatRequest, Message
from datamill.llm.usage import UsageTotals
from datamill.services.errors import NotFoundError
from datamill.services.inference.file_search import FileSearch, SearchHit, grounding_text
from datamill.services.inference.models import ModelCatalog
from datamill.services.inference.response_credits import ResponseCreditsError, ResponsePricing
from datamill.services.inference.response_request import InputMessage, ResponseRequest, parse_response_request
from datamill.store import Store, utcnow
from datamill.store import responses as repo
from datamill.store import tenants as tenants_repo
from datamill.store.ids import new_id
from datamill.store.response_models import StoredResponse
from datamill.store.runs import reserve_credits
from datamill.text.tokenizer import Tokenizer

#: The longest chain of earlier responses one request may continue.
MAX_CHAIN = 100


_T = TypeVar("_T")


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


@dataclass
class _Held:
    """A call's reservation once it is taken: the credits and the output cap they were priced on."""

    taken: bool = False
    amount: float = 0.0
    cap: int = 0


class ResponseCall:
    """A call `ResponseService.start` began; it runs to its end (settled, stored) whoever waits for it."""

    def __init__(self, reserved: asyncio.Future[None], task: asyncio.Future[dict[str, Any]]) -> None:
        self._reserved, self._task = reserved, task

    async def reserved(self) -> None:
        """Wait until the call's credits are reserved.

        Raises:
            ResponseCreditsError: the balance does not cover the reservation (nothing was sent to the model).
        """
        await asyncio.shield(self._reserved)

    async def answer(self) -> dict[str, Any]:
        """The response object, once the call is over and settled.

        Raises:
            ModelError: the provider could not serve the call (429 or 502).
        """
        return await asyncio.shield(self._task)


class ResponseService:
    """Creates, stores, reads and deletes responses; see the module docstring."""

    def __init__(
        self,
        store: Store,
        models: ModelCatalog,
        gateway_factory: Callable[[], Gateway],
        prices: PriceTable,
        file_search: FileSearch,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        self._store, self._models, self._gateway_factory = store, models, gateway_factory
        self._pricing = ResponsePricing(prices, tokenizer)
        self._file_search = file_search
        #: Calls still running; kept referenced so that they finish after their client leaves.
        self._in_flight: set[asyncio.Future[dict[str, Any]]] = set()

    def prepare(self, tenant_id: str, body: Any) -> PreparedResponse:
        """Check a create request and gather its conversation (blocking: it reads the database).

        Raises:
            ValidationError: a bad body, a model the server does not route, or a ``previous_response_id``
                not stored (400).
            NotFoundError: a ``file_search`` dataset id the tenant does not have (404).
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
            history = self._history(session, tenant_id, request.previous_response_id)
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

    def start(self, prepared: PreparedResponse) -> ResponseCall:
        """Begin the call (see the module docstring); wait on the returned `ResponseCall`."""
        loop = asyncio.get_running_loop()
        reserved: asyncio.Future[None] = loop.create_future()
        reserved.add_done_callback(_retrieved)
        task = asyncio.ensure_future(self._run(prepared, reserved))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        task.add_done_callback(_retrieved)
        return ResponseCall(reserved, task)

    async def answer(self, prepared: PreparedResponse) -> dict[str, Any]:
        """Make the call and wait for its response object (`start`, then its reservation and answer).

        Raises:
            ResponseCreditsError: the balance does not cover the call's reservation (402).
            ModelError: the provider could not serve the call (429 or 502).
        """
        call = self.start(prepared)
        await call.reserved()
        return await call.answer()

    async def _run(self, prepared: PreparedResponse, reserved: asyncio.Future[None]) -> dict[str, Any]:
        try:
            return await self._call(prepared, reserved)
        except BaseException as exc:
            if not reserved.done():  # failed before its reservation was taken: whoever waits learns why
                if isinstance(exc, Exception):
                    reserved.set_exception(exc)
                else:
                    reserved.cancel()
            raise

    async def _call(self, prepared: PreparedResponse, reserved: asyncio.Future[None]) -> dict[str, Any]:
        request = prepared.request
        gateway = self._gateway_factory()
        held = _Held()
        outcome: _Outcome | None = None
        body: dict[str, Any] | None = None
        try:
            await _to_end(self._reserve, prepared, gateway, held)
            reserved.set_result(None)
            chat = ChatRequest(
                messages=prepared.conversation,
                max_tokens=held.cap,
                temperature=0.7 if request.temperature is None else request.temperature,
            )
            outcome = await _outcome(gateway, request.model, chat)
        finally:
            try:
                if held.taken:  # settled here and only here, whatever ended the call
                    billed = gateway.usage.total
                    credits = self._pricing.charge(billed.cost_usd, held.amount)
                    if outcome is not None:
                        body = _response_body(prepared, outcome, billed, credits, held.amount)
                    await _to_end(self._settle, prepared, held.amount, credits, body)
            finally:
                await gateway.aclose()
        assert body is not None  # a call that got no outcome raised above
        return body

    def _reserve(self, prepared: PreparedResponse, gateway: Gateway, held: _Held) -> None:
        """Take the call's reservation from the balance into `held`, in one conditional update.

        Raises:
            ResponseCreditsError: the balance does not cover it (nothing is taken).
        """
        request = prepared.request
        route = gateway.routing.resolve(request.model)
        cap = request.max_output_tokens or route.max_output_tokens
        tokens = self._pricing.input_tokens(prepared.conversation)
        amount = self._pricing.reservation(route, tokens, cap, gateway.retry)
        if amount > 0:
            with self._store.session() as session:
                if not reserve_credits(session, prepared.tenant_id, amount):
                    tenant = tenants_repo.tenant_by_id(session, prepared.tenant_id)
                    balance = float(tenant.credits) if tenant is not None else 0.0
                    detail = self._pricing.detail(route, tokens, cap, gateway.retry)
                    raise ResponseCreditsError(amount, balance, detail)
        held.taken, held.amount, held.cap = True, amount, cap

    def _settle(
        self, prepared: PreparedResponse, reserved: float, credits: float, body: dict[str, Any] | None
    ) -> None:
        """Give back what the call did not cost and store its response if asked, in one transaction."""
        with self._store.session() as session:
            if reserved != credits:
                tenants_repo.add_credits(session, prepared.tenant_id, reserved - credits)
            if body is not None and prepared.request.store:
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


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen: whoever waited for it may have gone (a client that left)."""
    if not future.cancelled():
        future.exception()


async def _to_end(fn: Callable[..., _T], *args: Any) -> _T:
    """Run blocking `fn` in a thread and wait for its end, even when the waiting task is cancelled meanwhile.

    A cancel is raised once `fn` has ended, so what `fn` did (a reservation taken, credits given back) is
    known to the caller's ``finally``.
    """
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        _retrieved(future)
        raise asyncio.CancelledError
    return future.result()


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
    prepared: PreparedResponse, outcome: _Outcome, billed: UsageTotals, credits: float, reserved: float
) -> dict[str, Any]:
    request = prepared.request
    usage, cost = billed.usage, billed.cost_usd
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
        "billing": {"cost_usd": cost, "credits": credits, "reserved_credits": reserved},
    }
