"""The batch APIs of the three providers, as the simulator serves them.

- OpenAI: ``POST /v1/files`` (multipart, ``purpose=batch``, a JSON-lines file of ``{custom_id, method, url,
  body}``), ``POST /v1/batches`` (``input_file_id``, ``endpoint``, ``completion_window``, ``metadata``),
  ``GET /v1/batches/{id}``, ``GET /v1/batches`` and ``GET /v1/files/{id}/content`` for the output file
  (``{id, custom_id, response: {status_code, request_id, body}, error}`` per line) and the error file (the
  requests answered with an error status).
- Anthropic Message Batches: ``POST /v1/messages/batches`` (``requests: [{custom_id, params}]``),
  ``GET /v1/messages/batches/{id}`` (``processing_status``, ``request_counts``, ``results_url``) and
  ``GET /v1/messages/batches/{id}/results`` (``{custom_id, result: {type: succeeded, message} | {type:
  errored, error}}`` per line).
- Gemini: ``POST /v1beta/models/{model}:batchGenerateContent`` with inline requests (``batch.inputConfig.
  requests.requests: [{request, metadata}]``), answered with a long-running operation ``batches/{id}``;
  ``GET /v1beta/batches/{id}`` reports ``metadata.state`` and, once done, ``response.inlinedResponses.
  inlinedResponses`` in request order (``{response, metadata}`` or ``{error, metadata}``);
  ``GET /v1beta/batches`` lists them (``operations``).

A batch ends ``delay_s`` seconds after it was created; its requests are answered when it is first looked at
after that, each through the simulator's own request handling (`ProviderSimulator.answer_item`): the same
behaviours, answers and billed usage as online, logged with the batch's id (and billed at the batch price by
`SimLog.cost_usd`). Every call of a batch API is logged too, with its ``operation`` (``batch_create``, ...),
so a test can count how many batches were created.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
from aiohttp import BodyPartReader, web

from datamill.llm.simulator.formats import API_ANTHROPIC, API_GEMINI, API_OPENAI, error_body


class Answering(Protocol):
    """What the batch routes need of the simulator (`ProviderSimulator`): answer an item, log a call."""

    def answer_item(
        self, api: str, path: str, body: Any, headers: dict[str, str], model: str | None, batch: str
    ) -> tuple[int, Any]: ...

    def record_operation(
        self, request: web.Request, api: str, operation: str, status: int, batch: str | None, body: Any = None
    ) -> None: ...


_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_GEMINI_BATCH = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
_GEMINI_OUTPUT = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"


@dataclass(slots=True)
class _Item:
    """One request of a batch: its id, the model path it stands for, its body, and once answered its reply."""

    custom_id: str
    path: str
    body: Any
    model: str | None = None
    metadata: Any = None
    status: int = 0
    reply: Any = None


@dataclass(slots=True)
class _Batch:
    id: str
    api: str
    created: float
    due: float
    items: list[_Item]
    headers: dict[str, str]
    metadata: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    ended: bool = False


class BatchEndpoints:
    """The batch routes of one `ProviderSimulator`, with the files and batches it holds in memory."""

    def __init__(self, simulator: Answering, *, delay_s: float = 0.0) -> None:
        self.simulator = simulator
        self.delay_s = delay_s
        self.batches: dict[str, _Batch] = {}
        self.files: dict[str, tuple[str, bytes]] = {}  # id → (purpose, content)
        self._ids = itertools.count(1)

    def register(self, app: web.Application) -> None:
        app.router.add_post("/v1/files", self._openai_upload)
        app.router.add_get("/v1/files/{file_id}/content", self._openai_file)
        app.router.add_post("/v1/batches", self._openai_create)
        app.router.add_get("/v1/batches", self._openai_list)
        app.router.add_get("/v1/batches/{batch_id}", self._openai_get)
        app.router.add_post("/v1/messages/batches", self._anthropic_create)
        app.router.add_get("/v1/messages/batches/{batch_id}", self._anthropic_get)
        app.router.add_get("/v1/messages/batches/{batch_id}/results", self._anthropic_results)
        app.router.add_get("/v1beta/batches", self._gemini_list)
        app.router.add_get("/v1beta/batches/{batch_id}", self._gemini_get)

    def clear(self) -> None:
        self.batches.clear()
        self.files.clear()

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}sim"

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _settle(self, batch: _Batch) -> None:
        """Answer the batch's requests once it is due (the first look after ``delay_s``)."""
        if batch.ended or self._now() < batch.due:
            return
        for item in batch.items:
            item.status, item.reply = self.simulator.answer_item(
                batch.api, item.path, item.body, batch.headers, item.model, batch.id
            )
        batch.ended = True
        if batch.api == API_OPENAI:
            self._openai_files(batch)

    def _log(
        self, request: web.Request, api: str, operation: str, response: web.Response, batch: str | None
    ) -> web.Response:
        self.simulator.record_operation(request, api, operation, response.status, batch)
        return response

    # ---- OpenAI ----------------------------------------------------------------------------------------

    async def _openai_upload(self, request: web.Request) -> web.Response:
        purpose, content, filename = None, None, "input.jsonl"
        try:
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "purpose":
                    purpose = (await part.text()).strip()
                elif part.name == "file":
                    filename = part.filename or filename
                    content = bytes(await part.read())
        except (ValueError, AssertionError, KeyError) as exc:
            return self._log(
                request, API_OPENAI, "file_upload", _bad(API_OPENAI, f"not multipart: {exc}"), None
            )
        if purpose != "batch" or content is None:
            message = "expected multipart fields 'purpose' (batch) and 'file'"
            return self._log(request, API_OPENAI, "file_upload", _bad(API_OPENAI, message), None)
        file_id = self._new_id("file-")
        self.files[file_id] = (purpose, content)
        body = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": _epoch(),
            "filename": filename,
            "purpose": purpose,
        }
        return self._log(request, API_OPENAI, "file_upload", _json(200, body), None)

    async def _openai_file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        found = self.files.get(file_id)
        if found is None:
            response = _json(
                404, error_body(API_OPENAI, 404, "invalid_request_error", f"No such File: {file_id}")
            )
            return self._log(request, API_OPENAI, "file_content", response, None)
        response = web.Response(status=200, body=found[1], content_type="application/octet-stream")
        return self._log(request, API_OPENAI, "file_content", response, None)

    async def _openai_create(self, request: web.Request) -> web.Response:
        try:
            data = orjson.loads(await request.read())
            batch = self._openai_batch(data, request)
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
            return self._log(request, API_OPENAI, "batch_create", _bad(API_OPENAI, str(exc)), None)
        self.batches[batch.id] = batch
        return self._log(request, API_OPENAI, "batch_create", _json(200, self._openai_view(batch)), batch.id)

    def _openai_batch(self, data: dict[str, Any], request: web.Request) -> _Batch:
        if data.get("endpoint") != "/v1/chat/completions":
            raise ValueError("endpoint: only /v1/chat/completions is served")
        if data.get("completion_window") != "24h":
            raise ValueError("completion_window: must be 24h")
        file_id = str(data["input_file_id"])
        if file_id not in self.files or self.files[file_id][0] != "batch":
            raise ValueError(f"input_file_id: no batch file {file_id}")
        items: list[_Item] = []
        seen: set[str] = set()
        for number, line in enumerate(self.files[file_id][1].splitlines(), start=1):
            if not line.strip():
                continue
            entry = orjson.loads(line)
            custom_id = str(entry["custom_id"])
            if custom_id in seen:
                raise ValueError(f"line {number}: custom_id {custom_id!r} is not unique")
            if entry.get("method") != "POST" or entry.get("url") != "/v1/chat/completions":
                raise ValueError(f"line {number}: method must be POST and url /v1/chat/completions")
            seen.add(custom_id)
            items.append(_Item(custom_id, "/v1/chat/completions", entry["body"]))
        if not items:
            raise ValueError("the input file holds no requests")
        now = self._now()
        metadata = data.get("metadata") or {}
        headers = {k.lower(): v for k, v in request.headers.items()}
        batch = _Batch(self._new_id("batch_"), API_OPENAI, now, now + self.delay_s, items, headers, metadata)
        batch.input_file_id = file_id
        return batch

    def _openai_files(self, batch: _Batch) -> None:
        good: list[bytes] = []
        bad: list[bytes] = []
        for n, item in enumerate(batch.items, start=1):
            line = {
                "id": f"batch_req_{batch.id}_{n}",
                "custom_id": item.custom_id,
                "response": {
                    "status_code": item.status,
                    "request_id": f"req_{batch.id}_{n}",
                    "body": item.reply,
                },
                "error": None,
            }
            (good if item.status == 200 else bad).append(orjson.dumps(line) + b"\n")
        if good:
            batch.output_file_id = self._new_id("file-")
            self.files[batch.output_file_id] = ("batch_output", b"".join(good))
        if bad:
            batch.error_file_id = self._new_id("file-")
            self.files[batch.error_file_id] = ("batch_output", b"".join(bad))

    def _openai_view(self, batch: _Batch) -> dict[str, Any]:
        done = batch.ended
        failed = sum(1 for item in batch.items if done and item.status != 200)
        created = int(_epoch() - (self._now() - batch.created))
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": None,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": "completed" if done else "in_progress",
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": created,
            "in_progress_at": created,
            "expires_at": created + 86_400,
            "completed_at": _epoch() if done else None,
            "request_counts": {
                "total": len(batch.items),
                "completed": len(batch.items) - failed if done else 0,
                "failed": failed,
            },
            "metadata": batch.metadata or None,
        }

    async def _openai_get(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None or batch.api != API_OPENAI:
            message = f"No batch found with id '{request.match_info['batch_id']}'."
            return self._log(
                request,
                API_OPENAI,
                "batch_get",
                _json(404, error_body(API_OPENAI, 404, "invalid_request_error", message)),
                None,
            )
        self._settle(batch)
        return self._log(request, API_OPENAI, "batch_get", _json(200, self._openai_view(batch)), batch.id)

    async def _openai_list(self, request: web.Request) -> web.Response:
        views = [self._openai_view(b) for b in reversed(self.batches.values()) if b.api == API_OPENAI]
        body = {"object": "list", "data": views, "has_more": False}
        return self._log(request, API_OPENAI, "batch_list", _json(200, body), None)

    # ---- Anthropic -------------------------------------------------------------------------------------

    async def _anthropic_create(self, request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            if "anthropic-version" not in headers:
                raise ValueError("anthropic-version: header is required")
            data = orjson.loads(await request.read())
            items: list[_Item] = []
            for n, entry in enumerate(data["requests"]):
                custom_id = str(entry["custom_id"])
                if not _CUSTOM_ID.match(custom_id):
                    raise ValueError(f"requests.{n}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$")
                if any(item.custom_id == custom_id for item in items):
                    raise ValueError(f"requests.{n}.custom_id: {custom_id!r} is not unique")
                items.append(_Item(custom_id, "/v1/messages", dict(entry["params"])))
            if not items:
                raise ValueError("requests: at least one request is required")
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
            return self._log(request, API_ANTHROPIC, "batch_create", _bad(API_ANTHROPIC, str(exc)), None)
        now = self._now()
        batch = _Batch(self._new_id("msgbatch_"), API_ANTHROPIC, now, now + self.delay_s, items, headers)
        self.batches[batch.id] = batch
        return self._log(
            request, API_ANTHROPIC, "batch_create", _json(200, self._anthropic_view(batch, request)), batch.id
        )

    def _anthropic_view(self, batch: _Batch, request: web.Request) -> dict[str, Any]:
        done = batch.ended
        counts = {
            "processing": 0 if done else len(batch.items),
            "succeeded": 0,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        }
        if done:
            counts["succeeded"] = sum(1 for item in batch.items if item.status == 200)
            counts["errored"] = len(batch.items) - counts["succeeded"]
        created = datetime.now(UTC) - timedelta(seconds=self._now() - batch.created)
        base = f"{request.scheme}://{request.host}"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": "ended" if done else "in_progress",
            "request_counts": counts,
            "ended_at": _iso(datetime.now(UTC)) if done else None,
            "created_at": _iso(created),
            "expires_at": _iso(created + timedelta(days=1)),
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{base}/v1/messages/batches/{batch.id}/results" if done else None,
        }

    def _anthropic_batch(self, request: web.Request) -> _Batch | None:
        batch = self.batches.get(request.match_info["batch_id"])
        return batch if batch is not None and batch.api == API_ANTHROPIC else None

    async def _anthropic_get(self, request: web.Request) -> web.Response:
        batch = self._anthropic_batch(request)
        if batch is None:
            return self._log(request, API_ANTHROPIC, "batch_get", _not_found(API_ANTHROPIC), None)
        self._settle(batch)
        return self._log(
            request, API_ANTHROPIC, "batch_get", _json(200, self._anthropic_view(batch, request)), batch.id
        )

    async def _anthropic_results(self, request: web.Request) -> web.Response:
        batch = self._anthropic_batch(request)
        if batch is None or not batch.ended:
            return self._log(request, API_ANTHROPIC, "batch_results", _not_found(API_ANTHROPIC), None)
        lines = []
        for item in batch.items:
            if item.status == 200:
                result: dict[str, Any] = {"type": "succeeded", "message": item.reply}
            else:
                result = {"type": "errored", "error": item.reply}
            lines.append(orjson.dumps({"custom_id": item.custom_id, "result": result}) + b"\n")
        response = web.Response(status=200, body=b"".join(lines), content_type="application/binary")
        return self._log(request, API_ANTHROPIC, "batch_results", response, batch.id)

    # ---- Gemini ----------------------------------------------------------------------------------------

    async def gemini_create(self, request: web.Request, model: str) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            data = orjson.loads(await request.read())
            spec = data["batch"]
            config = spec.get("inputConfig") or spec.get("input_config")
            entries = config["requests"]["requests"]
            items = [
                _Item(
                    str(n), f"/v1beta/models/{model}:generateContent", e["request"], model, e.get("metadata")
                )
                for n, e in enumerate(entries)
            ]
            if not items:
                raise ValueError("batch.inputConfig.requests.requests: at least one request is required")
            display = str(spec.get("displayName") or spec.get("display_name") or "")
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
            return self._log(
                request, API_GEMINI, "batch_create", _bad(API_GEMINI, f"invalid batch: {exc!r}"), None
            )
        now = self._now()
        batch = _Batch(self._new_id("batches/"), API_GEMINI, now, now + self.delay_s, items, headers)
        batch.model, batch.metadata = model, {"displayName": display}
        self.batches[batch.id] = batch
        return self._log(request, API_GEMINI, "batch_create", _json(200, self._gemini_view(batch)), batch.id)

    def _gemini_view(self, batch: _Batch) -> dict[str, Any]:
        done = batch.ended
        created = datetime.now(UTC) - timedelta(seconds=self._now() - batch.created)
        count = str(len(batch.items))
        stats: dict[str, Any] = {"requestCount": count, "pendingRequestCount": "0" if done else count}
        if done:
            good = sum(1 for item in batch.items if item.status == 200)
            stats["successfulRequestCount"] = str(good)
            stats["failedRequestCount"] = str(len(batch.items) - good)
        metadata = {
            "@type": _GEMINI_BATCH,
            "model": f"models/{batch.model}",
            "displayName": batch.metadata.get("displayName", ""),
            "createTime": _iso(created),
            "updateTime": _iso(datetime.now(UTC)),
            "batchStats": stats,
            "state": "BATCH_STATE_SUCCEEDED" if done else "BATCH_STATE_PENDING",
            "name": batch.id,
        }
        view: dict[str, Any] = {"name": batch.id, "metadata": metadata}
        if done:
            answers = []
            for item in batch.items:
                key = "response" if item.status == 200 else "error"
                value = item.reply if item.status == 200 else (item.reply or {}).get("error", item.reply)
                answer: dict[str, Any] = {key: value}
                if item.metadata is not None:
                    answer["metadata"] = item.metadata
                answers.append(answer)
            output = {"@type": _GEMINI_OUTPUT, "inlinedResponses": {"inlinedResponses": answers}}
            metadata["output"] = {"inlinedResponses": {"inlinedResponses": answers}}
            view["done"] = True
            view["response"] = output
        return view

    async def _gemini_list(self, request: web.Request) -> web.Response:
        views = [self._gemini_view(b) for b in reversed(self.batches.values()) if b.api == API_GEMINI]
        return self._log(request, API_GEMINI, "batch_list", _json(200, {"operations": views}), None)

    async def _gemini_get(self, request: web.Request) -> web.Response:
        batch = self.batches.get("batches/" + request.match_info["batch_id"])
        if batch is None or batch.api != API_GEMINI:
            return self._log(request, API_GEMINI, "batch_get", _not_found(API_GEMINI), None)
        self._settle(batch)
        return self._log(request, API_GEMINI, "batch_get", _json(200, self._gemini_view(batch)), batch.id)


def _epoch() -> int:
    return int(datetime.now(UTC).timestamp())


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _bad(api: str, message: str) -> web.Response:
    kind = "INVALID_ARGUMENT" if api == API_GEMINI else "invalid_request_error"
    return _json(400, error_body(api, 400, kind, message))


def _not_found(api: str) -> web.Response:
    kind = "NOT_FOUND" if api == API_GEMINI else "not_found_error"
    return _json(404, error_body(api, 404, kind, "batch not found"))


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
