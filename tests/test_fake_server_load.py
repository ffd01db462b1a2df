"""The fake server as a load generator: latency distributions, a per-minute limit, echoed replies, the CLI."""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

import aiohttp
import pytest

from datamill.llm.fake_server import FakeOpenAIServer, echo_reply


def _body(text: str) -> dict[str, object]:
    return {
        "model": "m",
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": text}],
    }


async def _post(
    session: aiohttp.ClientSession, base_url: str, text: str
) -> tuple[int, dict[str, str], bytes]:
    async with session.post(base_url + "/chat/completions", json=_body(text)) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def test_fixed_latency_is_the_configured_value() -> None:
    server = FakeOpenAIServer(latency_s=0.25)
    assert {server.latency() for _ in range(20)} == {0.25}


def test_uniform_latency_stays_within_the_spread_and_varies() -> None:
    server = FakeOpenAIServer(latency_s=0.5, latency_dist="uniform", latency_spread=0.2, seed=1)
    draws = [server.latency() for _ in range(2000)]
    assert all(0.4 <= d <= 0.6 for d in draws)
    assert min(draws) < 0.42
    assert max(draws) > 0.58


def test_lognormal_latency_has_the_configured_median() -> None:
    server = FakeOpenAIServer(latency_s=0.5, latency_dist="lognormal", latency_spread=0.5, seed=2)
    draws = [server.latency() for _ in range(4001)]
    assert all(d > 0 for d in draws)
    assert 0.45 < statistics.median(draws) < 0.55
    assert max(draws) > 1.0  # a long tail


def test_an_unknown_latency_distribution_is_refused() -> None:
    with pytest.raises(ValueError, match="latency_dist"):
        FakeOpenAIServer(latency_dist="gaussian")


async def test_requests_above_the_per_minute_budget_get_429_with_the_seconds_left() -> None:
    async with FakeOpenAIServer(max_per_minute=3) as srv, aiohttp.ClientSession() as session:
        answers = [await _post(session, srv.base_url, f"q{i}") for i in range(5)]

    assert [status for status, _, _ in answers] == [200, 200, 200, 429, 429]
    retry_after = float(answers[3][1]["Retry-After"])
    assert 55.0 < retry_after <= 60.0
    assert srv.statuses[429] == 2


async def test_the_per_minute_budget_renews_when_the_minute_is_over() -> None:
    async with FakeOpenAIServer(max_per_minute=1) as srv, aiohttp.ClientSession() as session:
        first = await _post(session, srv.base_url, "a")
        assert (await _post(session, srv.base_url, "b"))[0] == 429
        assert srv._minute_start is not None
        srv._minute_start -= 60.0  # as if the minute had passed
        again = await _post(session, srv.base_url, "c")

    assert (first[0], again[0]) == (200, 200)


async def test_echo_reply_answers_with_the_last_message() -> None:
    async with FakeOpenAIServer(reply=echo_reply) as srv, aiohttp.ClientSession() as session:
        status, _, body = await _post(session, srv.base_url, "row 7: reset my password")

    assert status == 200
    assert b'"content":"echo: row 7: reset my password"' in body


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post_sync(base_url: str, text: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        base_url + "/chat/completions",
        data=json.dumps(_body(text)).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_until_up(base_url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base_url + "/models", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.05)


def test_the_command_line_wires_the_load_options() -> None:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "datamill.llm.fake_server",
        "--port",
        str(port),
        "--echo",
        "--latency",
        "0.01",
    ]
    cmd += ["--max-per-minute", "1", "--latency-dist", "uniform", "--latency-spread", "0.5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(base_url, proc)
        first = _post_sync(base_url, "hello")
        second = _post_sync(base_url, "again")
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    assert first[0] == 200
    assert b"echo: hello" in first[1]
    assert second[0] == 429
