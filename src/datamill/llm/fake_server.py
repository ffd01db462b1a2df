"""A loopback OpenAI-compatible server for tests and benchmarks, with scripted latency and failures.

In a test::

    async with FakeOpenAIServer(latency_s=0.01, fail_first=2) as srv:
        ...  # route a model to srv.base_url (it ends in /v1); srv.count, srv.requests

From a shell (a benchmark runs it in its own process so its CPU is not the client's)::

    python -m datamill.llm.fake_server --port 8700 --latency 0.5

Per request, in this order: above ``max_concurrent`` requests in flight → 429 with ``Retry-After``; above
``max_per_minute`` requests admitted in the current minute (fixed windows from the first request) → 429 with
``Retry-After`` set to the seconds left in the window; the first ``fail_first`` requests → 500; the next
``hang_first`` → no answer until the server stops (past any client timeout); otherwise wait the latency
(``latency_s``; with ``latency_dist`` ``uniform`` drawn from ``latency_s * (1 ± latency_spread)``, with
``lognormal`` a median of ``latency_s`` and sigma ``latency_spread``), answer 500 with probability
``error_rate``, else a chat completion whose content is ``reply`` (text, or a callable given the request
body that returns text or a `FakeResponse` for full control of status, body and headers).
``GET /v1/models`` answers at once.

``GET /_fake/stats`` reports what the server saw, for a test that runs the server in its own process:
requests received, in flight now and at the peak, answers by status, and (with ``count_prompts``) how many
distinct requests were answered 200 and how many of those answers repeated a request answered before
(``paid_twice``: what a client that lost answers, e.g. killed in the middle of a run, paid for again).

`echo_reply` answers each request with its last message, so every row of a benchmark gets a distinct answer
(a fixed reply would make the next step's requests identical, and the response cache would answer them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from datamill.llm import event_loop


@dataclass(slots=True)
class FakeResponse:
    """A scripted raw answer: a dict body is sent as JSON, str or bytes as they are."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Reply = str | Callable[[dict[str, Any]], "str | FakeResponse"]
LATENCY_DISTS = ("fixed", "uniform", "lognormal")


class FakeOpenAIServer:
    """``POST /v1/chat/completions`` on 127.0.0.1 (a free port unless ``port`` is given).

    ``requests`` and ``headers`` record each chat request's body and headers (unless ``record=False``);
    ``count`` counts chat requests, ``statuses`` the answers by status, ``max_in_flight`` the peak.
    """

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        fail_first: int = 0,
        error_rate: float = 0.0,
        max_concurrent: int | None = None,
        retry_after_s: float = 1.0,
        max_per_minute: int | None = None,
        latency_dist: str = "fixed",
        latency_spread: float = 0.0,
        hang_first: int = 0,
        reply: Reply = "fake reply",
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        reasoning_tokens: int = 0,
        record: bool = True,
        count_prompts: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
    ) -> None:
        self.latency_s = latency_s
        self.fail_first = fail_first
        self.error_rate = error_rate
        self.max_concurrent = max_concurrent
        self.retry_after_s = retry_after_s
        self.max_per_minute = max_per_minute
        if latency_dist not in LATENCY_DISTS:
            raise ValueError(f"latency_dist must be one of {LATENCY_DISTS}, not {latency_dist!r}")
        self.latency_dist = latency_dist
        self.latency_spread = latency_spread
        self._minute_start: float | None = None
        self._minute_count = 0
        self.hang_first = hang_first
        self.reply = reply
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.reasoning_tokens = reasoning_tokens
        self.record = record
        self.count_prompts = count_prompts
        #: Answers 200 per distinct request (a digest of its model and messages), with ``count_prompts``.
        self.paid: Counter[str] = Counter()
        self.host = host
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.count = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.statuses: Counter[int] = Counter()
        self._rng = random.Random(seed)
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._arrived: asyncio.Event | None = None
        self._admitted = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/_fake/stats", self._stats)
        self._stopping = asyncio.Event()
        self._arrived = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        # A large backlog: 256 clients connecting at once must not overflow the accept queue (SYN retries
        # would add a second of latency to some calls and spoil benchmarks).
        site = web.TCPSite(self._runner, self.host, self.port, backlog=4096)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def wait_for_requests(self, n: int) -> None:
        """Wait until ``n`` chat requests have been admitted (in flight) or answered at once (429, 400)."""
        while self._admitted < n and self._arrived is not None:
            self._arrived.clear()
            await self._arrived.wait()

    def _admit(self) -> None:
        self._admitted += 1
        if self._arrived is not None:
            self._arrived.set()

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    def stats(self) -> dict[str, Any]:
        """What ``GET /_fake/stats`` answers (see the module docstring)."""
        return {
            "count": self.count,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "statuses": {str(status): n for status, n in sorted(self.statuses.items())},
            "paid": sum(self.paid.values()),
            "distinct_paid": len(self.paid),
            "paid_twice": sum(n - 1 for n in self.paid.values()),
        }

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _chat(self, request: web.Request) -> web.Response:
        self.count += 1
        number = self.count
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            self._admit()
            return self._send(FakeResponse(400, {"error": {"message": "body is not JSON"}}))
        if self.record:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in request.headers.items()})
        if self.max_concurrent is not None and self.in_flight >= self.max_concurrent:
            headers = {"Retry-After": f"{self.retry_after_s:g}"}
            self._admit()
            return self._send(FakeResponse(429, {"error": {"message": "too many requests"}}, headers))
        wait = self._minute_wait()
        if wait is not None:
            self._admit()
            headers = {"Retry-After": f"{wait:.3f}"}
            return self._send(FakeResponse(429, {"error": {"message": "rate limit per minute"}}, headers))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self._admit()
        try:
            answer = await self._answer(number, body)
            if self.count_prompts and answer.status == 200:
                digest = hashlib.blake2b(
                    orjson.dumps([body.get("model"), body.get("messages")]), digest_size=16
                ).hexdigest()
                self.paid[digest] += 1
            return self._send(answer)
        finally:
            self.in_flight -= 1

    async def _answer(self, number: int, body: dict[str, Any]) -> FakeResponse:
        if number <= self.fail_first:
            return FakeResponse(500, {"error": {"message": f"scripted failure {number}"}})
        if number <= self.fail_first + self.hang_first:
            if self._stopping is not None:
                await self._stopping.wait()
            return FakeResponse(503, {"error": {"message": "server stopping"}})
        latency = self.latency()
        if latency > 0:
            await asyncio.sleep(latency)
        if self.error_rate and self._rng.random() < self.error_rate:
            return FakeResponse(500, {"error": {"message": "random failure"}})
        content = self.reply(body) if callable(self.reply) else self.reply
        if isinstance(content, FakeResponse):
            return content
        return FakeResponse(200, self._completion(number, body, content))

    def latency(self) -> float:
        """One draw of the answer latency in seconds, from ``latency_dist``."""
        if self.latency_dist == "uniform":
            spread = self.latency_s * self.latency_spread
            return max(0.0, self._rng.uniform(self.latency_s - spread, self.latency_s + spread))
        if self.latency_dist == "lognormal" and self.latency_s > 0:
            return self._rng.lognormvariate(math.log(self.latency_s), self.latency_spread)
        return self.latency_s

    def _minute_wait(self) -> float | None:
        """Seconds left in the current minute when its budget is spent (count this request otherwise)."""
        if self.max_per_minute is None:
            return None
        now = asyncio.get_running_loop().time()
        if self._minute_start is None or now - self._minute_start >= 60.0:
            self._minute_start, self._minute_count = now, 0
        if self._minute_count >= self.max_per_minute:
            return max(0.001, 60.0 - (now - self._minute_start))
        self._minute_count += 1
        return None

    def _completion(self, number: int, body: dict[str, Any], content: str) -> dict[str, Any]:
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", ()))
        prompt = self.prompt_tokens if self.prompt_tokens is not None else math.ceil(prompt_chars / 4)
        answer = self.completion_tokens if self.completion_tokens is not None else math.ceil(len(content) / 4)
        completion = answer + self.reasoning_tokens
        return {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "fake"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            },
        }

    def _send(self, answer: FakeResponse) -> web.Response:
        self.statuses[answer.status] += 1
        body = answer.body
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = orjson.dumps(body)
        return web.Response(
            status=answer.status, body=body, headers=answer.headers, content_type="application/json"
        )


def echo_reply(body: dict[str, Any]) -> str:
    """The request's last message content, prefixed with ``echo:`` (``--echo`` on the command line)."""
    messages = body.get("messages") or [{}]
    return "echo: " + str(messages[-1].get("content", ""))


def main(argv: list[str] | None = None) -> None:
    """Serve until killed: ``python -m datamill.llm.fake_server --port 8700 --latency 0.5``."""
    parser = argparse.ArgumentParser(description="Loopback OpenAI-compatible fake server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--max-concurrent", type=int, default=None, help="429 above this many in flight")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds sent with a 429")
    parser.add_argument("--max-per-minute", type=int, default=None, help="429 above this many a minute")
    parser.add_argument("--latency-dist", choices=LATENCY_DISTS, default="fixed")
    parser.add_argument(
        "--latency-spread", type=float, default=0.0, help="uniform ±fraction, lognormal sigma"
    )
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--reply", default="fake reply")
    parser.add_argument("--echo", action="store_true", help="answer each request with its last message")
    parser.add_argument(
        "--count-prompts", action="store_true", help="count answers per distinct request (GET /_fake/stats)"
    )
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(
        latency_s=args.latency,
        max_concurrent=args.max_concurrent,
        retry_after_s=args.retry_after,
        max_per_minute=args.max_per_minute,
        latency_dist=args.latency_dist,
        latency_spread=args.latency_spread,
        fail_first=args.fail_first,
        error_rate=args.error_rate,
        reply=echo_reply if args.echo else args.reply,
        record=False,
        count_prompts=args.count_prompts,
        host=args.host,
        port=args.port,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the way to stop it
        event_loop.run(_serve(server))


async def _serve(server: FakeOpenAIServer) -> None:
    await server.start()
    print(f"fake OpenAI server listening on {server.base_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    main()
