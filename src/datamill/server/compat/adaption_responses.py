"""Adaption API responses routes: create (JSON or server-sent events), retrieve, delete, input items.

``POST /api/v1/responses`` answers the response object (`services.inference.responses`). With
``stream: true`` the answer is ``text/event-stream``: ``response.created`` at once, then, once the model has
answered, ``response.output_item.added``, ``response.content_part.added``, ``response.output_text.delta``
(the text in chunks), ``response.output_text.done``, ``response.content_part.done``,
``response.output_item.done`` and ``response.completed`` (``response.incomplete`` or ``response.failed``
for such a status), each ``event: <type>`` with a JSON ``data:`` line, and last ``data: [DONE]``. The
provider's reply is read whole before it is streamed: datamill checks every reply (refusals, cuts) before
anything of it is sent. The call's credits are reserved before the answer starts (a stream too), so a balance
that does not cover them answers 402 naming ``max_output_tokens``. A client that leaves, mid-stream or
before a plain answer, does not stop the call: it is finished, settled and (with ``store: true``) stored. A
call the provider could not serve answers 429 (rate limited, with ``retry-after``) or 502, or in a stream an
``error`` event with the same JSON body.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from datamill.core.errors import ModelError, RateLimitedError, ValidationError
from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.adaption_models import ErrorPublic
from datamill.server.errors import error_response
from datamill.services.inference.responses import PreparedResponse, ResponseCall

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorPublic} for code in (400, 401, 402, 404, 429, 502)
}
#: Characters of answer text per ``response.output_text.delta`` event.
DELTA_CHARS = 64
MAX_LIMIT = 100

router = APIRouter(tags=["responses"], responses=_ERRORS)


def _model_error(exc: ModelError) -> tuple[int, dict[str, str]]:
    if isinstance(exc, RateLimitedError):
        return 429, {"retry-after": f"{exc.retry_after:g}"} if exc.retry_after else {}
    return 502, {}


@router.post("/responses", response_model=dict[str, Any])
async def create_response(
    tenant: CurrentTenant, context: Context, body: JsonBody = None
) -> dict[str, Any] | JSONResponse | StreamingResponse:
    """Answer ``input`` with ``model`` (see the module docstring for ``stream: true``)."""
    service = context.responses
    prepared = await run_in_threadpool(service.prepare, tenant.id, body)
    call = service.start(prepared)  # runs to its end (settled) even when this request is cancelled
    await call.reserved()  # 402 here, before any answer starts
    if prepared.request.stream:
        return StreamingResponse(
            _events(call, prepared), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )
    try:
        return await call.answer()
    except ModelError as exc:
        status, headers = _model_error(exc)
        return error_response(status, f"the model call failed: {exc}", headers=headers)


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _events(call: ResponseCall, prepared: PreparedResponse) -> AsyncIterator[bytes]:
    sequence = 0

    def event(kind: str, **fields: Any) -> bytes:
        nonlocal sequence
        sequence += 1
        return _sse(kind, {"type": kind, "sequence_number": sequence, **fields})

    shell = {
        "id": prepared.id,
        "object": "response",
        "created_at": prepared.created_at,
        "status": "in_progress",
    }
    yield event("response.created", response={**shell, "model": prepared.request.model, "output": []})
    try:
        body = await call.answer()  # shielded: a client that leaves does not cancel the call
    except ModelError as exc:
        status, _ = _model_error(exc)
        message = f"the model call failed: {exc}"
        yield _sse("error", {"statusCode": status, "error": "Model call failed", "message": message})
        return
    for index, item in enumerate(body["output"]):
        if item["type"] != "message":  # a file_search_call: whole at once
            yield event("response.output_item.added", output_index=index, item=item)
            yield event("response.output_item.done", output_index=index, item=item)
            continue
        yield event("response.output_item.added", output_index=index, item={**item, "content": []})
        for part_index, part in enumerate(item["content"]):
            where = {"item_id": item["id"], "output_index": index, "content_index": part_index}
            empty = {**part, "text": ""} if part["type"] == "output_text" else part
            yield event("response.content_part.added", **where, part=empty)
            if part["type"] == "output_text":
                text = part["text"]
                for start in range(0, len(text), DELTA_CHARS):
                    yield event(
                        "response.output_text.delta", **where, delta=text[start : start + DELTA_CHARS]
                    )
                yield event("response.output_text.done", **where, text=text)
            yield event("response.content_part.done", **where, part=part)
        yield event("response.output_item.done", output_index=index, item=item)
    final = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
        body["status"], "response.failed"
    )
    yield event(final, response=body)
    yield b"data: [DONE]\n\n"


@router.get("/responses/{response_id}", response_model=dict[str, Any])
def retrieve_response(response_id: str, tenant: CurrentTenant, context: Context) -> dict[str, Any]:
    """A response created with ``store: true``."""
    return context.responses.retrieve(tenant.id, response_id)


@router.delete("/responses/{response_id}", response_model=dict[str, Any])
def delete_response(response_id: str, tenant: CurrentTenant, context: Context) -> dict[str, Any]:
    """Delete a stored response: ``{id, object: "response.deleted", deleted: true}``."""
    return context.responses.delete(tenant.id, response_id)


def _limit(value: str | None) -> int:
    if value is None or value == "":
        return 20
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if number != int(number) or not 1 <= number <= MAX_LIMIT:
        raise ValidationError.of("limit", f"must be a whole number from 1 to {MAX_LIMIT}, got {value!r}")
    return int(number)


@router.get("/responses/{response_id}/input_items", response_model=dict[str, Any])
def list_input_items(
    response_id: str,
    tenant: CurrentTenant,
    context: Context,
    order: str | None = None,
    limit: str | None = None,
    after: str | None = None,
) -> dict[str, Any]:
    """The input items of a stored response, a page at a time (``after`` = the last id of the page before)."""
    if order not in (None, "", "asc", "desc"):
        raise ValidationError.of("order", f"must be asc or desc, got {order!r}")
    return context.responses.input_items(
        tenant.id, response_id, order=order or "desc", limit=_limit(limit), after=after or None
    )
