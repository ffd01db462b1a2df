"""The batch APIs of OpenAI, Anthropic and Gemini: submit a batch, poll it, read its results.

Each request of a batch is the body an online call would send (the provider's own ``build_payload``), and
each answer is read by the provider's own ``parse_reply``, so a batched call is the same call as an online
one, only delivered later and billed at the batch price.

- **OpenAI** (``/v1/files`` and ``/v1/batches``): the requests are uploaded as a JSON-lines file
  (``{custom_id, method: POST, url: /v1/chat/completions, body}`` per line, multipart with ``purpose=batch``),
  then a batch is created on it with ``completion_window: 24h`` and ``metadata.datamill_batch`` naming it.
  ``GET /v1/batches/{id}`` is polled until ``completed`` (or ``expired`` / ``cancelled``: the requests it
  answered are kept) or ``failed``; the output file holds the answers (``response.status_code``,
  ``response.body``) and the error file the requests answered with an error status.
- **Anthropic** (Message Batches): ``POST /v1/messages/batches`` with ``requests: [{custom_id, params}]``;
  ``GET /v1/messages/batches/{id}`` is polled until ``processing_status: ended``; ``results_url`` gives one
  line per request, ``result.type`` ``succeeded`` (with the ``message``), ``errored``, ``canceled`` or
  ``expired``.
- **Gemini** (``batchGenerateContent`` with inline requests): ``POST /v1beta/models/{model}:
  batchGenerateContent`` with ``batch.displayName`` and ``batch.inputConfig.requests.requests: [{request,
  metadata: {key}}]`` answers a long-running operation ``batches/{id}``; ``GET /v1beta/batches/{id}`` is
  polled until ``done``; ``response.inlinedResponses.inlinedResponses`` holds a ``response`` or an
  ``error`` per request, in request order, with the request's ``metadata``.

A batch that was created but whose answer never arrived (the process died, the connection dropped) can be
found again by its name on OpenAI (``metadata``) and Gemini (``displayName``); Anthropic's API has no
client-side name to look a batch up by (`BatchAPI.find` returns None there).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from datamill.core.errors import PermanentModelError, TransientError
from datamill.llm.http.interface import HttpReply, Transport
from datamill.llm.providers import anthropic, gemini, openai
from datamill.llm.providers.base import api_key, raise_for_status
from datamill.llm.types import ChatRequest, ProviderReply, Route

#: Seconds one batch API call may take (an upload of a large file included).
CALL_TIMEOUT_S = 300.0
#: The metadata key of an OpenAI batch that names it.
NAME_KEY = "datamill_batch"


@dataclass(frozen=True, slots=True)
class BatchState:
    """Where a batch stands.

    Attributes:
        ended: no more answers will come (completed, expired, cancelled or failed).
        failed: why the batch as a whole failed (None when it ran; its missing answers go online).
        detail: what the status call answered (Gemini's results are in it).
    """

    ended: bool
    failed: str | None = None
    detail: Any = None


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One request's outcome: ``status`` 200 and the reply body the provider's parser reads, or an error."""

    status: int
    body: bytes


class BatchAPI(Protocol):
    """One provider's batch API."""

    async def submit(self, route: Route, items: list[tuple[str, ChatRequest]], name: str) -> str:
        """Create a batch of ``(custom_id, request)``; returns the provider's batch id."""
        ...

    async def state(self, route: Route, batch_id: str) -> BatchState: ...

    async def results(self, route: Route, batch_id: str, state: BatchState) -> dict[str, ItemResult]:
        """The outcome of each request, by custom id (requests without one are missing)."""
        ...

    async def find(self, route: Route, name: str) -> str | None:
        """The id of a batch created under ``name``, if the API can look it up."""
        ...

    def parse(self, route: Route, request: ChatRequest, body: bytes) -> ProviderReply: ...


class _Base:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def _call(
        self,
        route: Route,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        payload: Any = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> HttpReply:
        if payload is not None:
            reply = await self.transport.post_json(
                url, payload, headers=headers, timeout_s=CALL_TIMEOUT_S, proxy=route.proxy
            )
        else:
            reply = await self.transport.request(
                method,
                url,
                body=body,
                content_type=content_type,
                headers=headers,
                timeout_s=CALL_TIMEOUT_S,
                proxy=route.proxy,
            )
        raise_for_status(reply, route)
        return reply


def _json(reply: HttpReply, route: Route, what: str) -> Any:
    try:
        return orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        shown = reply.body[:200].decode("utf-8", "replace")
        raise TransientError(f"{route.name}: the batch API answered {what} with no JSON: {shown!r}") from None


def _lines(body: bytes) -> list[dict[str, Any]]:
    out = []
    for line in body.splitlines():
        if line.strip():
            value = orjson.loads(line)
            if isinstance(value, dict):
                out.append(value)
    return out


class OpenAIBatches(_Base):
    """OpenAI's Batch API (files and batches), on the route's ``base_url`` (ending in ``/v1``)."""

    def _headers(self, route: Route) -> dict[str, str]:
        headers = dict(route.headers)
        key = api_key(route)
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _base(self, route: Route) -> str:
        if not route.base_url:
            raise PermanentModelError(f"model {route.name!r} has no base_url in its route", status=400)
        return route.base_url.rstrip("/")

    async def submit(self, route: Route, items: list[tuple[str, ChatRequest]], name: str) -> str:
        lines = b"".join(
            orjson.dumps(
                {
                    "custom_id": custom_id,
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": openai.build_payload(route, request),
                }
            )
            + b"\n"
            for custom_id, request in items
        )
        boundary = "datamill-" + uuid.uuid4().hex
        body = b"".join(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'.encode(),
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}.jsonl"\r\n'
                "Content-Type: application/jsonl\r\n\r\n".encode(),
                lines,
                f"\r\n--{boundary}--\r\n".encode(),
            )
        )
        base, headers = self._base(route), self._headers(route)
        uploaded = await self._call(
            route,
            "POST",
            f"{base}/files",
            headers,
            body=body,
            content_type=f"multipart/form-data; boundary={boundary}",
        )
        file_id = _json(uploaded, route, "the upload")["id"]
        created = await self._call(
            route,
            "POST",
            f"{base}/batches",
            headers,
            payload={
                "input_file_id": file_id,
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
                "metadata": {NAME_KEY: name},
            },
        )
        return str(_json(created, route, "the batch create")["id"])

    async def state(self, route: Route, batch_id: str) -> BatchState:
        reply = await self._call(
            route, "GET", f"{self._base(route)}/batches/{batch_id}", self._headers(route)
        )
        data = _json(reply, route, "the batch status")
        status = data.get("status")
        if status in ("completed", "expired", "cancelled"):
            return BatchState(True, None, data)
        if status == "failed":
            errors = (data.get("errors") or {}).get("data") or []
            reason = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict)) or "failed"
            return BatchState(True, f"the batch failed: {reason}", data)
        return BatchState(False, None, data)

    async def results(self, route: Route, batch_id: str, state: BatchState) -> dict[str, ItemResult]:
        out: dict[str, ItemResult] = {}
        data = state.detail or {}
        for field in ("output_file_id", "error_file_id"):
            file_id = data.get(field)
            if not file_id:
                continue
            reply = await self._call(
                route, "GET", f"{self._base(route)}/files/{file_id}/content", self._headers(route)
            )
            for line in _lines(reply.body):
                response = line.get("response") or {}
                custom_id = str(line.get("custom_id"))
                if line.get("error"):
                    out[custom_id] = ItemResult(0, orjson.dumps(line["error"]))
                else:
                    status = int(response.get("status_code") or 0)
                    out[custom_id] = ItemResult(status, orjson.dumps(response.get("body")))
        return out

    async def find(self, route: Route, name: str) -> str | None:
        reply = await self._call(route, "GET", f"{self._base(route)}/batches?limit=100", self._headers(route))
        for batch in _json(reply, route, "the batch list").get("data") or []:
            if (batch.get("metadata") or {}).get(NAME_KEY) == name:
                return str(batch["id"])
        return None

    def parse(self, route: Route, request: ChatRequest, body: bytes) -> ProviderReply:
        return openai.parse_reply(body, route)


class AnthropicBatches(_Base):
    """Anthropic's Message Batches API."""

    def _headers(self, route: Route) -> dict[str, str]:
        headers = {"anthropic-version": anthropic.ANTHROPIC_VERSION}
        key = api_key(route)
        if key is not None:
            headers["x-api-key"] = key
        headers.update(route.headers)
        return headers

    def _base(self, route: Route) -> str:
        return (route.base_url or anthropic.DEFAULT_BASE_URL).rstrip("/") + "/v1/messages/batches"

    async def submit(self, route: Route, items: list[tuple[str, ChatRequest]], name: str) -> str:
        requests = [
            {"custom_id": custom_id, "params": anthropic.build_payload(route, request)[0]}
            for custom_id, request in items
        ]
        reply = await self._call(
            route, "POST", self._base(route), self._headers(route), payload={"requests": requests}
        )
        return str(_json(reply, route, "the batch create")["id"])

    async def state(self, route: Route, batch_id: str) -> BatchState:
        reply = await self._call(route, "GET", f"{self._base(route)}/{batch_id}", self._headers(route))
        data = _json(reply, route, "the batch status")
        return BatchState(data.get("processing_status") == "ended", None, data)

    async def results(self, route: Route, batch_id: str, state: BatchState) -> dict[str, ItemResult]:
        url = (state.detail or {}).get("results_url") or f"{self._base(route)}/{batch_id}/results"
        reply = await self._call(route, "GET", url, self._headers(route))
        out: dict[str, ItemResult] = {}
        for line in _lines(reply.body):
            result = line.get("result") or {}
            kind = result.get("type")
            if kind == "succeeded":
                out[str(line.get("custom_id"))] = ItemResult(200, orjson.dumps(result.get("message")))
            else:
                detail = result.get("error") or {"type": kind}
                out[str(line.get("custom_id"))] = ItemResult(0, orjson.dumps(detail))
        return out

    async def find(self, route: Route, name: str) -> str | None:
        return None

    def parse(self, route: Route, request: ChatRequest, body: bytes) -> ProviderReply:
        unwrap = anthropic.build_payload(route, request)[1]
        return anthropic.parse_reply(body, route, unwrap=unwrap)


class GeminiBatches(_Base):
    """Gemini's batch mode with inline requests (``batchGenerateContent``)."""

    def _headers(self, route: Route) -> dict[str, str]:
        headers = dict(route.headers)
        key = api_key(route)
        if key is not None:
            headers["x-goog-api-key"] = key
        return headers

    def _base(self, route: Route) -> str:
        return (route.base_url or gemini.DEFAULT_BASE_URL).rstrip("/") + "/v1beta"

    async def submit(self, route: Route, items: list[tuple[str, ChatRequest]], name: str) -> str:
        model = route.model.removeprefix("models/")
        requests = [
            {"request": gemini.build_payload(route, request), "metadata": {"key": custom_id}}
            for custom_id, request in items
        ]
        payload = {"batch": {"displayName": name, "inputConfig": {"requests": {"requests": requests}}}}
        reply = await self._call(
            route,
            "POST",
            f"{self._base(route)}/models/{model}:batchGenerateContent",
            self._headers(route),
            payload=payload,
        )
        return str(_json(reply, route, "the batch create")["name"])

    async def state(self, route: Route, batch_id: str) -> BatchState:
        reply = await self._call(route, "GET", f"{self._base(route)}/{batch_id}", self._headers(route))
        data = _json(reply, route, "the batch status")
        state = str((data.get("metadata") or {}).get("state") or "")
        if data.get("error"):
            return BatchState(True, f"the batch failed: {data['error'].get('message')}", data)
        if state.endswith("FAILED"):
            return BatchState(True, "the batch failed", data)
        ended = bool(data.get("done")) or state.endswith(("SUCCEEDED", "CANCELLED", "EXPIRED"))
        return BatchState(ended, None, data)

    async def results(self, route: Route, batch_id: str, state: BatchState) -> dict[str, ItemResult]:
        data = state.detail or {}
        output = data.get("response") or (data.get("metadata") or {}).get("output") or {}
        inlined = (output.get("inlinedResponses") or {}).get("inlinedResponses") or []
        out: dict[str, ItemResult] = {}
        for answer in inlined:
            key = (answer.get("metadata") or {}).get("key")
            if key is None:
                continue
            if "response" in answer:
                out[str(key)] = ItemResult(200, orjson.dumps(answer["response"]))
            else:
                out[str(key)] = ItemResult(0, orjson.dumps(answer.get("error")))
        return out

    async def find(self, route: Route, name: str) -> str | None:
        reply = await self._call(
            route, "GET", f"{self._base(route)}/batches?pageSize=100", self._headers(route)
        )
        for operation in _json(reply, route, "the batch list").get("operations") or []:
            if (operation.get("metadata") or {}).get("displayName") == name:
                return str(operation["name"])
        return None

    def parse(self, route: Route, request: ChatRequest, body: bytes) -> ProviderReply:
        return gemini.parse_reply(body, route)


#: Provider kinds with a batch API, and the class that speaks it.
BATCH_APIS: dict[str, type[OpenAIBatches | AnthropicBatches | GeminiBatches]] = {
    "openai": OpenAIBatches,
    "anthropic": AnthropicBatches,
    "gemini": GeminiBatches,
}
