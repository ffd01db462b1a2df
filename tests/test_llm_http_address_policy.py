"""A transport serving endpoints a tenant named dials only addresses the outbound-URL policy passes.

The check runs on the addresses each new connection is about to dial (the resolver's answer for that
connection), so spellings of an address, names resolving to internal addresses and a name whose answer
changes between connections (DNS rebinding) are all judged by the address actually dialled.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from datamill.core.errors import ConnectionConfigError
from datamill.llm.guard import remote_allowed
from datamill.llm.http.transport import HttpTransport
from datamill.text.fetch_policy import FetchPolicy
from raw_http import RawServer, Start, fixed, raw_servers

OK = fixed("200 OK", b'{"ok": true}')


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    async with raw_servers() as start_server:
        yield start_server


def _at(raw: RawServer, host: str) -> str:
    return f"http://{host}:{raw.port}/v1/chat"


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "2130706433", "0x7f000001", "017700000001", "0x7f.1", "[::ffff:127.0.0.1]", "localhost"],
)
async def test_every_spelling_of_loopback_is_refused_before_connecting(start: Start, host: str) -> None:
    raw = await start(OK)
    transport = HttpTransport(address_check=FetchPolicy().refusal)
    with pytest.raises(ConnectionConfigError) as caught:
        await transport.post_json(_at(raw, host), {})
    await transport.aclose()
    assert caught.value.kind == "policy"
    assert "loopback" in str(caught.value)
    assert "DATAMILL_FETCH_ALLOW" in str(caught.value)
    assert raw.connections == 0


async def test_an_allowed_address_is_reached_directly_whatever_the_proxy_settings(start: Start) -> None:
    raw = await start(OK)
    allow = FetchPolicy.with_allowed(["127.0.0.1"]).refusal
    transport = HttpTransport(environ={"HTTP_PROXY": "http://127.0.0.1:9"}, address_check=allow)
    reply = await transport.post_json(raw.url, {"q": 1})
    await transport.aclose()
    assert reply.json() == {"ok": True}
    assert raw.connections == 1


def _scripted(answers: dict[str, list[list[str]]]) -> Any:
    """A ``getaddrinfo`` answering each name with its next scripted list of addresses."""
    asked: list[str] = []

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        addresses = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    getaddrinfo.asked = asked  # type: ignore[attr-defined]
    return getaddrinfo


async def test_one_internal_address_among_public_ones_refuses_the_name(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = await start(OK)
    resolve = _scripted({"mixed.test": [["8.8.8.8", "169.254.169.254"]]})
    loop = asyncio.get_running_loop()
    dialled: list[object] = []

    async def no_dial(sock: socket.socket, address: object) -> None:
        dialled.append(address)
        raise ConnectionRefusedError("this test dials nothing")

    monkeypatch.setattr(loop, "getaddrinfo", resolve)
    monkeypatch.setattr(loop, "sock_connect", no_dial)
    transport = HttpTransport(address_check=FetchPolicy().refusal)
    with remote_allowed(), pytest.raises(ConnectionConfigError, match=r"169\.254\.169\.254"):
        await transport.post_json(_at(raw, "mixed.test"), {})
    await transport.aclose()
    assert dialled == []


async def test_a_name_rebound_to_an_internal_address_is_refused_on_the_next_connection(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = await start(OK)
    resolve = _scripted({"rebind.test": [["127.0.0.1"], ["127.0.0.2"]]})
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolve)
    transport = HttpTransport(address_check=FetchPolicy.with_allowed(["127.0.0.1"]).refusal)
    first = await transport.post_json(_at(raw, "rebind.test"), {})
    await transport.aclose()  # the next request needs a new connection, so a new answer
    with pytest.raises(ConnectionConfigError, match=r"127\.0\.0\.2"):
        await transport.post_json(_at(raw, "rebind.test"), {})
    await transport.aclose()
    assert first.status == 200
    assert resolve.asked == ["rebind.test", "rebind.test"]
    assert raw.connections == 1


async def test_a_transport_without_a_check_still_reaches_loopback(start: Start) -> None:
    raw = await start(OK)
    transport = HttpTransport()
    assert (await transport.post_json(_at(raw, "localhost"), {})).status == 200
    await transport.aclose()
