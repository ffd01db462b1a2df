"""The simulator's loopback HTTP server (aiohttp): routes, the order of checks, and the runtime controls."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import struct
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import orjson
import yaml
from aiohttp import web

from datamill.llm.simulator.answers import Responder, apply, clean_answer, native_reasoning
from datamill.llm.simulator.batches import BatchEndpoints
from datamill.llm.simulator.behaviours import ERROR_BEHAVIOURS, Behaviours, Predicate
from datamill.llm.simulator.caching import PrefixCache
from datamill.llm.simulator.formats import (
    API_ANTHROPIC,
    API_GEMINI,
    API_OPENAI,
    Answer,
    BadRequest,
    WireRequest,
    error_body,
    parse,
    reply_body,
    tokens,
)
from datamill.llm.simulator.limits import Budget
from datamill.llm.simulator.log import Billed, LogEntry, SimLog

#: Model-name families `ProviderSimulator.routes` maps onto the simulator, by wire format.
FAMILIES = {API_OPENAI: "sim-openai", API_ANTHROPIC: "sim-anthropic", API_GEMINI: "sim-gemini"}
#: Limits the headers of a scripted 429 report when no budget is set (requests, tokens).
_SCRIPTED_LIMITS = (500, 200_000)


class ProviderSimulator:
    """A loopback server speaking the OpenAI, Anthropic and Gemini wire formats (see the package docs).

    Args:
        rates: behaviour name → rate (see `BEHAVIOURS`); changeable at runtime with `set_rates` / `set`.
        seed: seeds the behaviour draws.
        latency_s: seconds before every answer.
        slow_first_byte_s: the delay of the ``slow_first_byte`` behaviour.
        retry_after_s: ``Retry-After`` of the ``rate_limit`` behaviour.
        tokens_per_minute, requests_per_minute: budgets answered with 429 when exceeded (`Budget`).
        window_s: the budgets' window.
        count_rejected: a request refused by a budget still counts against the request budget.
        cache_block_tokens, cache_min_tokens: the prompt-cache model (`PrefixCache`).
        echo_chars: how much of the last user turn a text answer repeats.
        responder: returns the answer text for a request instead of the echo.
        batch_delay_s: seconds from a batch's creation until it ends (`datamill.llm.simulator.batches`).
        log_file: also append each answered request to this JSON-lines file.
        host, port: where to listen (port 0: a free one).
    """

    def __init__(
        self,
        *,
        rates: Mapping[str, float] | None = None,
        seed: int = 0,
        latency_s: float = 0.0,
        slow_first_byte_s: float = 1.0,
        retry_after_s: float = 1.0,
        tokens_per_minute: int | None = None,
        requests_per_minute: int | None = None,
        window_s: float = 60.0,
        count_rejected: bool = False,
        cache_block_tokens: int = 128,
        cache_min_tokens: int = 1024,
        echo_chars: int = 200,
        responder: Responder | None = None,
        batch_delay_s: float = 0.0,
        log_file: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.behaviours = Behaviours(rates, seed=seed)
        self.latency_s = latency_s
        self.slow_first_byte_s = slow_first_byte_s
        self.retry_after_s = retry_after_s
        self.budget = Budget(
            tokens_per_minute=tokens_per_minute,
            requests_per_minute=requests_per_minute,
            window_s=window_s,
            count_rejected=count_rejected,
        )
        self.cache = PrefixCache(block_tokens=cache_block_tokens, min_tokens=cache_min_tokens)
        self.echo_chars = echo_chars
        self.responder = responder
        self.log = SimLog()
        self.batches = BatchEndpoints(self, delay_s=batch_delay_s)
        self.host = host
        self.port = port
        self._log_path = Path(log_file) if log_file is not None else None
        self._log_handle: IO[bytes] | None = None
        self._attempts: Counter[bytes] = Counter()
        self._runner: web.AppRunner | None = None

    # ---- configuration -------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://host:port``: the Anthropic and Gemini base URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_url(self) -> str:
        """``http://host:port/v1``: the OpenAI-compatible base URL."""
        return self.base_url + "/v1"

    def set_rates(self, **rates: float) -> None:
        """Replace every behaviour rate (those not named are switched off)."""
        self.behaviours.set_rates(rates)

    def set(self, name: str, rate: float, *, when: Predicate | None = None) -> None:
        """Set one behaviour's rate, optionally only for the requests ``when`` accepts."""
        self.behaviours.set(name, rate, when=when)

    def routes(self, *, input_price: float = 1.0, output_price: float = 2.0, **fields: Any) -> dict[str, Any]:
        """A routing mapping (for `Routing.from_dict`, or a routes file) for the simulator.

        It sends ``sim-openai/*``, ``sim-anthropic/*`` and ``sim-gemini/*`` model names here; ``fields`` are
        added to each route.
        """
        base = {
            "model": "{suffix}",
            "api_key_env": None,
            "input_price": input_price,
            "output_price": output_price,
        }
        urls = {API_OPENAI: self.openai_url, API_ANTHROPIC: self.base_url, API_GEMINI: self.base_url}
        return {
            "routes": {
                f"{family}/*": {"provider": api, "base_url": urls[api], **base, **fields}
                for api, family in FAMILIES.items()
            }
        }

    def write_routes(self, path: str | Path, **fields: Any) -> Path:
        """Write `routes` as a routes file (for ``--routes`` or ``DATAMILL_ROUTES``); returns its path."""
        target = Path(path)
        target.write_text(yaml.safe_dump(self.routes(**fields), sort_keys=False), encoding="utf-8")
        return target

    # ---- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_post("/v1beta/models/{target}", self._gemini)
        self.batches.register(app)
        app.router.add_get("/_sim/log", self._get_log)
        app.router.add_delete("/_sim/log", self._delete_log)
        app.router.add_get("/_sim/behaviours", self._get_behaviours)
        app.router.add_put("/_sim/behaviours", self._put_behaviours)
        app.router.add_get("/_sim/stats", self._get_stats)
        if self._log_path is not None:
            self._log_handle = self._log_path.open("ab")
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=4096)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    async def __aenter__(self) -> ProviderSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def reset(self) -> None:
        """Forget the log, the prompt cache, the attempt counts and the budgets' windows."""
        self.log.clear()
        self.cache.clear()
        self._attempts.clear()
        self.batches.clear()
        self.budget = Budget(
            tokens_per_minute=self.budget.tokens_per_minute,
            requests_per_minute=self.budget.requests_per_minute,
            window_s=self.budget.window_s,
            count_rejected=self.budget.count_rejected,
        )

    def stats(self) -> dict[str, Any]:
        """Requests by status and by behaviour, and the tokens billed."""
        statuses = Counter(str(e.status) for e in self.log)
        behaviours = Counter(e.behaviour or "clean" for e in self.log)
        return {
            "requests": len(self.log),
            "statuses": dict(sorted(statuses.items())),
            "behaviours": dict(sorted(behaviours.items())),
            "billed": _billed_json(self.log.billed()),
        }

    # ---- handlers ------------------------------------------------------------------------------------------

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, API_OPENAI, None)

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, API_ANTHROPIC, None)

    async def _gemini(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        if method == "batchGenerateContent":
            return await self.batches.gemini_create(request, model)
        if method != "generateContent":
            return _json(404, error_body(API_GEMINI, 404, "NOT_FOUND", f"method {method!r} is not supported"))
        return await self._handle(request, API_GEMINI, model)

    async def _handle(self, request: web.Request, api: str, model: str | None) -> web.StreamResponse:
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        digest = hashlib.blake2b(request.path.encode() + b"\x00" + raw, digest_size=16).digest()
        self._attempts[digest] += 1
        entry = LogEntry(len(self.log) + 1, api, request.path, headers, None, attempt=self._attempts[digest])
        self.log.entries.append(entry)
        try:
            entry.body = orjson.loads(raw)
            if api == API_ANTHROPIC and "anthropic-version" not in headers:
                raise BadRequest("anthropic-version: header is required")
            wire = parse(api, entry.body, model=model)
        except (orjson.JSONDecodeError, BadRequest) as exc:
            message = str(exc) if isinstance(exc, BadRequest) else "the request body is not valid JSON"
            return self._finish(entry, _json(400, error_body(api, 400, _invalid(api), message)))
        entry.model, entry.prompt = wire.model, wire.prompt_text
        entry.behaviour = self.behaviours.pick(wire, digest, entry.attempt)
        now = asyncio.get_running_loop().time()
        if self.budget.active:
            wait = self.budget.admit(now, wire.prompt_tokens + (wire.max_tokens or 0))
            if wait is not None:
                entry.behaviour = "budget"
                return self._finish(entry, self._rate_limited(api, now, wait, scripted=False))
        # The rate-limit headers report the budgets as they stood when the request was admitted, as the
        # providers' rate limiters do (they run before the model).
        reply_headers = self.budget.headers(api, now) if self.budget.active else {}
        if entry.behaviour in ERROR_BEHAVIOURS:
            return self._finish(entry, self._error(api, entry.behaviour, now))
        answer = self._answer(wire, entry)
        entry.billed = self._bill(wire, answer)
        entry.text = answer.text or answer.refusal or ""
        body = orjson.dumps(reply_body(wire, answer, entry.billed, entry.number))
        delay = self.latency_s + (self.slow_first_byte_s if entry.behaviour == "slow_first_byte" else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if entry.behaviour == "reset":
            return await self._reset(request, entry, body, reply_headers)
        return self._finish(
            entry, web.Response(status=200, body=body, headers=reply_headers, content_type="application/json")
        )

    def answer_item(
        self, api: str, path: str, body: Any, headers: dict[str, str], model: str | None, batch: str
    ) -> tuple[int, Any]:
        """Answer one request of a batch: the status and JSON body an online call would have had.

        The same parsing, behaviours, answers and billing as an online request, without the budgets (batch
        work has limits of its own) and without the connection-level behaviours (``reset`` and
        ``slow_first_byte`` leave it answered cleanly). The log entry carries the batch's id.
        """
        raw = orjson.dumps(body)
        digest = hashlib.blake2b(path.encode() + b"\x00" + raw, digest_size=16).digest()
        self._attempts[digest] += 1
        entry = LogEntry(len(self.log) + 1, api, path, headers, body, attempt=self._attempts[digest])
        entry.batch = batch
        self.log.entries.append(entry)
        try:
            wire = parse(api, body, model=model)
        except BadRequest as exc:
            return self._record(entry, 400), error_body(api, 400, _invalid(api), str(exc))
        entry.model, entry.prompt = wire.model, wire.prompt_text
        entry.behaviour = self.behaviours.pick(wire, digest, entry.attempt)
        if entry.behaviour in ("reset", "slow_first_byte"):
            entry.behaviour = None
        if entry.behaviour in ERROR_BEHAVIOURS:
            response = self._error(api, entry.behaviour, asyncio.get_running_loop().time())
            return self._record(entry, response.status), orjson.loads(bytes(response.body or b"{}"))  # type: ignore[arg-type]
        answer = self._answer(wire, entry)
        entry.billed = self._bill(wire, answer)
        entry.text = answer.text or answer.refusal or ""
        return self._record(entry, 200), reply_body(wire, answer, entry.billed, entry.number)

    def record_operation(
        self, request: web.Request, api: str, operation: str, status: int, batch: str | None, body: Any = None
    ) -> None:
        """Log a call of a batch API (an upload, a create, a poll, a download): nothing is billed for it."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        entry = LogEntry(len(self.log) + 1, api, request.path, headers, body)
        entry.method, entry.batch, entry.operation = request.method, batch, operation
        self.log.entries.append(entry)
        self._record(entry, status)

    def _record(self, entry: LogEntry, status: int) -> int:
        entry.status = status
        if self._log_handle is not None:
            self._log_handle.write(orjson.dumps(entry.to_json()) + b"\n")
            self._log_handle.flush()
        return status

    def _answer(self, wire: WireRequest, entry: LogEntry) -> Answer:
        clean = clean_answer(wire, echo_chars=self.echo_chars, responder=self.responder)
        answer = clean
        if entry.behaviour is not None and entry.behaviour not in ("reset", "slow_first_byte"):
            changed = apply(entry.behaviour, wire, clean)
            if changed is None:
                entry.behaviour = None
            else:
                answer = changed
        return native_reasoning(wire, answer)

    def _bill(self, wire: WireRequest, answer: Answer) -> Billed:
        prompt = wire.prompt_tokens
        if wire.api == API_ANTHROPIC:
            read, write = self.cache.explicit(wire.model, wire.prompt_text, wire.cache_breakpoint)
        else:
            read, write = self.cache.automatic(f"{wire.api}/{wire.model}", wire.prompt_text), 0
        sent = answer.text or answer.refusal or ""
        if answer.data is not None:
            sent = orjson.dumps(answer.data).decode()
        output = tokens(sent)
        if answer.finish == "length" and wire.max_tokens is not None:
            output = wire.max_tokens
        reasoning = tokens(answer.reasoning) if answer.reasoning is not None else 0
        if wire.thinking and answer.reasoning is None and wire.api != API_ANTHROPIC:
            reasoning = tokens(sent)
        return Billed(prompt, read, write, output, reasoning)

    def _error(self, api: str, behaviour: str, now: float) -> web.Response:
        if behaviour == "rate_limit":
            return self._rate_limited(api, now, self.retry_after_s, scripted=True)
        if behaviour == "overloaded":
            status = 529 if api == API_ANTHROPIC else 503
            kind = {API_OPENAI: "server_error", API_ANTHROPIC: "overloaded_error", API_GEMINI: "UNAVAILABLE"}[
                api
            ]
            return _json(
                status, error_body(api, status, kind, "The model is overloaded. Please try again later.")
            )
        if behaviour == "insufficient_quota":
            if api == API_ANTHROPIC:
                message = "Your credit balance is too low to access the Anthropic API."
                return _json(400, error_body(api, 400, "invalid_request_error", message))
            message = "You exceeded your current quota, please check your plan and billing details."
            return _json(429, error_body(api, 429, "insufficient_quota", message))
        if behaviour == "bad_request":
            message = "Unsupported parameter: 'temperature' is not supported with this model."
            kind = "unsupported_parameter" if api == API_OPENAI else _invalid(api)
            return _json(400, error_body(api, 400, kind, message))
        kind = {API_OPENAI: "server_error", API_ANTHROPIC: "api_error", API_GEMINI: "INTERNAL"}[api]
        return _json(500, error_body(api, 500, kind, "Internal server error."))

    def _rate_limited(self, api: str, now: float, wait: float, *, scripted: bool) -> web.Response:
        message = "Rate limit reached. Please try again later."
        kind = {
            API_OPENAI: "rate_limit_exceeded",
            API_ANTHROPIC: "rate_limit_error",
            API_GEMINI: "RESOURCE_EXHAUSTED",
        }
        body = error_body(api, 429, kind[api], message, retry_after_s=wait)
        headers = self.budget.headers(api, now, limits=_SCRIPTED_LIMITS if scripted else None)
        if api != API_GEMINI:
            headers["retry-after"] = str(max(1, round(wait))) if wait >= 1 else f"{wait:.3f}"
            if api == API_OPENAI:
                headers["retry-after-ms"] = str(max(1, round(wait * 1000)))
        return _json(429, body, headers)

    async def _reset(
        self, request: web.Request, entry: LogEntry, body: bytes, headers: dict[str, str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers=headers)
        response.content_type = "application/json"
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        self._finish(entry, response)
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return response

    def _finish(self, entry: LogEntry, response: web.StreamResponse) -> web.StreamResponse:
        self._record(entry, response.status)
        return response

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "sim", "object": "model"}]})

    async def _get_log(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return _json(200, {"entries": [e.to_json() for e in self.log.entries[since:]]})

    async def _delete_log(self, request: web.Request) -> web.Response:
        self.reset()
        return _json(200, {"cleared": True})

    async def _get_behaviours(self, request: web.Request) -> web.Response:
        return _json(200, {"rates": self.behaviours.rates, "seed": self.behaviours.seed})

    async def _put_behaviours(self, request: web.Request) -> web.Response:
        try:
            data = orjson.loads(await request.read())
            self.behaviours.set_rates({str(k): float(v) for k, v in dict(data["rates"]).items()})
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return _json(400, {"error": {"message": f"expected {{'rates': {{name: rate}}}}: {exc}"}})
        return _json(200, {"rates": self.behaviours.rates})

    async def _get_stats(self, request: web.Request) -> web.Response:
        return _json(200, self.stats())


def _invalid(api: str) -> str:
    return "INVALID_ARGUMENT" if api == API_GEMINI else "invalid_request_error"


def _billed_json(billed: Billed) -> dict[str, int]:
    return {
        "input_tokens": billed.input_tokens,
        "cached_input_tokens": billed.cached_input_tokens,
        "cache_write_tokens": billed.cache_write_tokens,
        "output_tokens": billed.output_tokens,
        "reasoning_tokens": billed.reasoning_tokens,
    }


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), headers=headers, content_type="application/json"
    )
