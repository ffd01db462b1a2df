"""What a failed connection means: endpoints that cannot be reached as configured are not retried."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from datamill.core.errors import (
    ConfigError,
    ConnectionConfigError,
    fails_every_row,
)
from datamill.llm.gateway import Gateway
from datamill.llm.guard import remote_allowed
from datamill.llm.http.connect import _interleave
from datamill.llm.http.interface import HttpReply, HttpRequest
from datamill.llm.http.mock import MockTransport
from datamill.llm.http.transport import HttpTransport
from datamill.llm.retry import RetryPolicy
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Message
from raw_http import RawServer, Start, fixed, raw_servers

HOST = "api.provider.test"


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    async with raw_servers() as start_server:
        yield start_server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, "localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def ca_folder(ca_file: Path, tmp_path: Path) -> Path:
    """A CA directory: the CA under the name OpenSSL looks for, its subject's hash (as `openssl rehash`)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to hash the CA's name")
    command = ["openssl", "x509", "-hash", "-noout", "-in", str(ca_file)]
    hashed = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / f"{hashed}.0").write_bytes(ca_file.read_bytes())
    return folder


def _chat(text: str = "hi") -> ChatRequest:
    return ChatRequest((Message("user", text),))


def _routing(base_url: str) -> Routing:
    route = {"provider": "openai", "base_url": base_url, "api_key_env": None, "max_concurrency": 4}
    return Routing.from_dict({"routes": {"m/*": route}})


async def test_a_refused_connection_is_not_retried_and_rejects_only_its_row(start: Start) -> None:
    raw = await start(fixed("200 OK", b"{}"))
    url = f"http://127.0.0.1:{raw.port}/v1"
    await raw.close()  # nothing listens there any more
    async with Gateway(_routing(url), retry=RetryPolicy(base_delay=0.001)) as gateway:
        with pytest.raises(ConnectionConfigError, match="refused the connection") as caught:
            await gateway.chat("m/x", _chat())
    assert caught.value.kind == "refused"
    assert not fails_every_row(caught.value)  # a run counts these; one alone rejects its row


async def test_a_name_that_does_not_resolve_is_a_dns_error() -> None:
    # Longer than DNS allows (255 bytes): the resolver refuses it without sending a query.
    host = ".".join(["a" * 60] * 5) + ".test"
    with remote_allowed(), pytest.raises(ConnectionConfigError, match="cannot resolve") as caught:
        await HttpTransport(environ={}).post_json(f"http://{host}/v1/chat", {}, timeout_s=10)
    assert caught.value.kind == "dns"


async def test_a_name_no_resolver_accepts_is_a_dns_error() -> None:
    with remote_allowed(), pytest.raises(ConnectionConfigError, match="cannot resolve") as caught:
        await HttpTransport(environ={}).post_json(f"http://{'b' * 64}.test/v1/chat", {}, timeout_s=10)
    assert caught.value.kind == "dns"


async def test_a_certificate_from_an_unknown_ca_is_a_tls_error(
    start: Start, tls_server_context: ssl.SSLContext
) -> None:
    raw = await RawServer(fixed("200 OK", b"{}")).start(tls_server_context)
    try:
        with pytest.raises(ConnectionConfigError, match=r"does not verify.*SSL_CERT_FILE") as caught:
            await HttpTransport(environ={}).post_json(f"https://localhost:{raw.port}/v1", {}, timeout_s=10)
    finally:
        await raw.close()
    assert caught.value.kind == "tls"


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
async def test_a_ca_bundle_named_in_the_environment_is_trusted(
    tls_server_context: ssl.SSLContext, ca_file: Path, variable: str
) -> None:
    raw = await RawServer(fixed("200 OK", b'{"ok": true}')).start(tls_server_context)
    try:
        transport = HttpTransport(environ={variable: str(ca_file)})
        reply = await transport.post_json(f"https://localhost:{raw.port}/v1", {}, timeout_s=10)
        await transport.aclose()
    finally:
        await raw.close()
    assert reply.json() == {"ok": True}


async def test_a_ca_directory_named_in_the_environment_is_trusted(
    tls_server_context: ssl.SSLContext, ca_folder: Path
) -> None:
    raw = await RawServer(fixed("200 OK", b"{}")).start(tls_server_context)
    try:
        transport = HttpTransport(environ={"SSL_CERT_DIR": str(ca_folder)})
        reply = await transport.post_json(f"https://localhost:{raw.port}/v1", {}, timeout_s=10)
        await transport.aclose()
    finally:
        await raw.close()
    assert reply.status == 200


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "SSL_CERT_DIR"])
async def test_a_ca_variable_naming_nothing_is_a_configuration_error(tmp_path: Path, variable: str) -> None:
    transport = HttpTransport(environ={variable: str(tmp_path / "missing.pem")})
    with pytest.raises(ConfigError, match=variable):
        await transport.post_json("https://localhost:9/v1", {}, timeout_s=5)


async def test_a_redirect_is_a_configuration_error_naming_where_it_points(start: Start) -> None:
    raw = await start(
        fixed("301 Moved Permanently", b"", "Location: https://api.example.com/v1/chat/completions")
    )
    async with Gateway(
        _routing(f"http://127.0.0.1:{raw.port}/v1"), retry=RetryPolicy(base_delay=0.001)
    ) as gateway:
        with pytest.raises(
            ConnectionConfigError, match=r"HTTP 301.*redirects to https://api\.example\.com"
        ) as caught:
            await gateway.chat("m/x", _chat())
    assert (caught.value.kind, caught.value.status) == ("redirect", 301)
    assert len(raw.requests) == 1  # not retried, not followed


async def test_the_gateway_retries_transient_failures_but_not_configuration_errors() -> None:
    seen: list[HttpRequest] = []

    def handler(request: HttpRequest) -> HttpReply:
        seen.append(request)
        text = request.json()["messages"][0]["content"]
        if text == "unreachable":
            raise ConnectionConfigError("api.provider.test refused the connection", "refused")
        if len([r for r in seen if r.json()["messages"][0]["content"] == text]) < 3:
            return HttpReply.of_json(503, {"error": {"message": "overloaded"}})
        return HttpReply.of_json(
            200,
            {
                "choices": [{"message": {"content": f"re: {text}"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2},
            },
        )

    transport = MockTransport(handler)
    routing = _routing("https://api.provider.test/v1")
    async with Gateway(routing, transport=transport, retry=RetryPolicy(base_delay=0.001)) as gateway:
        result = await gateway.chat("m/x", _chat("hello"))
        with pytest.raises(ConnectionConfigError):
            await gateway.chat("m/x", _chat("unreachable"))

    assert result.text == "re: hello"
    contents = [r.json()["messages"][0]["content"] for r in transport.requests]
    assert contents == ["hello"] * 3 + ["unreachable"]  # two 503s retried; the refusal once
    assert transport.requests[0].url == "https://api.provider.test/v1/chat/completions"
    assert not transport.closed  # the gateway closes only the transport it made


async def test_a_mock_transport_refuses_a_header_with_a_line_break_as_the_real_one_does() -> None:
    transport = MockTransport(lambda _r: HttpReply.of_json(200, {}))
    with pytest.raises(Exception, match="line break"):
        await transport.post_json("https://x.test/v1", {}, headers={"Authorization": "Bearer k\r\nX: 1"})
    assert transport.requests == []


async def test_per_host_caps_bound_the_open_connections(start: Start) -> None:
    raw = await start(fixed("200 OK", b"{}"))
    raw.pause_s = 0.05  # each reply takes a while, so requests pile up
    transport = HttpTransport(max_per_host=2)
    replies = await asyncio.gather(*(transport.post_json(raw.url, {}, timeout_s=10) for _ in range(8)))
    await transport.aclose()
    assert [r.status for r in replies] == [200] * 8
    assert raw.most_open == 2
    assert raw.connections == 2


async def test_localhost_is_reached_whichever_of_its_addresses_answers(start: Start) -> None:
    raw = await start(fixed("200 OK", b'{"ok": 1}'))  # listens on 127.0.0.1 only
    transport = HttpTransport(environ={})
    reply = await transport.post_json(f"http://localhost:{raw.port}/v1", {}, timeout_s=10)
    await transport.aclose()
    assert reply.json() == {"ok": 1}


def test_addresses_are_tried_with_their_families_interleaved() -> None:
    v6 = [(10, (f"::{i}", 443, 0, 0)) for i in range(1, 4)]
    v4 = [(2, (f"10.0.0.{i}", 443)) for i in range(1, 3)]
    mixed = _interleave([*v6, *v4])
    assert [a[1][0] for a in mixed] == ["::1", "10.0.0.1", "::2", "10.0.0.2", "::3"]
