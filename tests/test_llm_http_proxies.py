"""Proxies: the environment's rules, CONNECT tunnels for https, absolute form for http, a route's proxy."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from datamill.core.errors import ConfigError, ConnectionConfigError, PermanentModelError
from datamill.llm.gateway import Gateway
from datamill.llm.http.proxies import Proxy, ProxyRules
from datamill.llm.http.transport import HttpTransport
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Message
from raw_http import ConnectProxy, RawServer, Start, fixed, raw_servers

HOST = "api.provider.test"
OPENAI_REPLY = (
    b'{"choices": [{"message": {"content": "through"}, "finish_reason": "stop"}],'
    b' "usage": {"prompt_tokens": 3, "completion_tokens": 1}}'
)


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    async with raw_servers() as start_server:
        yield start_server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
async def provider_tls(ca: trustme.CA) -> AsyncIterator[RawServer]:
    """A TLS server holding a certificate for api.provider.test, on loopback."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(context)
    raw = await RawServer(fixed("200 OK", b'{"via": "tunnel"}')).start(context)
    yield raw
    await raw.close()


@pytest.fixture
async def proxy_to(request: pytest.FixtureRequest) -> AsyncIterator[list[ConnectProxy]]:
    started: list[ConnectProxy] = []
    yield started
    for proxy in started:
        await proxy.close()


async def _proxy(
    started: list[ConnectProxy], upstream_port: int, refuse_with: int | None = None
) -> ConnectProxy:
    proxy = await ConnectProxy(upstream_port, refuse_with=refuse_with).start()
    started.append(proxy)
    return proxy


async def test_https_goes_through_a_connect_tunnel_with_tls_to_the_provider(
    provider_tls: RawServer, proxy_to: list[ConnectProxy], ca_file: Path
) -> None:
    proxy = await _proxy(proxy_to, provider_tls.port)
    environ = {
        "HTTPS_PROXY": f"http://user:p%40ss@127.0.0.1:{proxy.port}",
        "SSL_CERT_FILE": str(ca_file),
    }
    transport = HttpTransport(environ=environ)

    replies = [await transport.post_json(f"https://{HOST}/v1/chat", {"n": i}, timeout_s=10) for i in range(2)]
    await transport.aclose()

    assert [r.json() for r in replies] == [{"via": "tunnel"}] * 2
    assert len(proxy.connects) == 1  # the tunnel was kept alive and reused
    connect = proxy.connects[0]
    assert connect.startswith(b"CONNECT api.provider.test:443 HTTP/1.1\r\nHost: api.provider.test:443\r\n")
    assert b"Proxy-Authorization: Basic dXNlcjpwQHNz\r\n" in connect  # user:p@ss
    # TLS ran end to end: the provider saw the request's own Host, not the proxy's.
    assert provider_tls.requests[0].startswith(b"POST /v1/chat HTTP/1.1\r\nHost: api.provider.test\r\n")


async def test_the_provider_certificate_is_verified_inside_the_tunnel(
    provider_tls: RawServer, proxy_to: list[ConnectProxy]
) -> None:
    proxy = await _proxy(proxy_to, provider_tls.port)
    transport = HttpTransport(environ={"https_proxy": proxy.url})  # the test CA is not trusted
    with pytest.raises(ConnectionConfigError, match="does not verify") as caught:
        await transport.post_json(f"https://{HOST}/v1/chat", {}, timeout_s=10)
    assert caught.value.kind == "tls"


async def test_http_goes_to_the_proxy_in_absolute_form(start: Start, proxy_to: list[ConnectProxy]) -> None:
    raw = await start(fixed("200 OK", b'{"via": "proxy"}'))
    proxy = await _proxy(proxy_to, raw.port)
    transport = HttpTransport(environ={"http_proxy": f"u:pw@127.0.0.1:{proxy.port}"})  # no scheme: http://

    reply = await transport.post_json("http://api.provider.test:8080/v1/chat?x=1", {}, timeout_s=10)
    await transport.aclose()

    assert reply.json() == {"via": "proxy"}
    assert proxy.heads[0].startswith(
        b"POST http://api.provider.test:8080/v1/chat?x=1 HTTP/1.1\r\nHost: api.provider.test:8080\r\n"
    )
    assert b"\r\nProxy-Authorization: Basic dTpwdw==\r\n" in proxy.heads[0]  # u:pw
    assert proxy.connects == []


async def test_a_proxy_that_wants_credentials_is_a_configuration_error(
    provider_tls: RawServer, proxy_to: list[ConnectProxy]
) -> None:
    proxy = await _proxy(proxy_to, provider_tls.port, refuse_with=407)
    transport = HttpTransport(environ={"ALL_PROXY": proxy.url})
    with pytest.raises(ConnectionConfigError, match="needs credentials") as caught:
        await transport.post_json(f"https://{HOST}/v1/chat", {}, timeout_s=10)
    assert caught.value.kind == "proxy"


async def test_a_proxy_that_is_not_running_is_a_configuration_error(start: Start) -> None:
    raw = await start(fixed("200 OK", b"{}"))
    port = raw.port
    await raw.close()
    transport = HttpTransport(environ={"HTTPS_PROXY": f"http://127.0.0.1:{port}"})
    with pytest.raises(ConnectionConfigError, match=f"proxy http://127.0.0.1:{port} refused") as caught:
        await transport.post_json(f"https://{HOST}/v1/chat", {}, timeout_s=10)
    assert caught.value.kind == "proxy"


async def test_no_proxy_sends_a_host_directly(proxy_to: list[ConnectProxy]) -> None:
    proxy = await _proxy(proxy_to, 9)
    transport = HttpTransport(environ={"HTTPS_PROXY": proxy.url, "NO_PROXY": "example.com,.provider.test"})
    # Direct means a remote host here, which the test suite's guard refuses before any connection.
    with pytest.raises(PermanentModelError, match="remote model requests are blocked"):
        await transport.post_json(f"https://{HOST}/v1/chat", {}, timeout_s=10)
    assert proxy.heads == []


async def test_a_routes_proxy_applies_even_to_loopback_and_none_overrides_the_environment(
    start: Start, proxy_to: list[ConnectProxy]
) -> None:
    raw = await start(fixed("200 OK", OPENAI_REPLY))
    proxy = await _proxy(proxy_to, raw.port)
    base = f"http://127.0.0.1:{raw.port}/v1"
    routing = Routing.from_dict(
        {
            "routes": {
                "via/*": {"provider": "openai", "base_url": base, "proxy": proxy.url},
                "direct/*": {"provider": "openai", "base_url": base, "proxy": "none"},
            }
        },
        environ={"HTTP_PROXY": "http://127.0.0.1:9"},  # the environment's proxy: would fail if used
    )
    request = ChatRequest((Message("user", "hi"),))
    async with Gateway(routing) as gateway:
        through = await gateway.chat("via/m", request)
        direct = await gateway.chat("direct/m", request)
    assert (through.text, direct.text) == ("through", "through")
    assert len(proxy.heads) == 1
    assert proxy.heads[0].startswith(f"POST {base}/chat/completions HTTP/1.1\r\n".encode())
    assert len(raw.requests) == 2


def test_a_route_with_a_proxy_the_client_cannot_speak_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match=r"route 'x/\*': field 'proxy'.*only http:// proxies"):
        Routing.from_dict({"routes": {"x/*": {"provider": "openai", "proxy": "socks5://127.0.0.1:1080"}}})


# -- the environment's rules ---------------------------------------------------------------------------


def _url(rules: ProxyRules, scheme: str, host: str) -> str | None:
    proxy = rules.for_url(scheme, host)
    return proxy.url if proxy is not None else None


def test_each_scheme_takes_its_own_variable_and_all_proxy_is_the_fallback() -> None:
    rules = ProxyRules.from_environ(
        {"HTTPS_PROXY": "http://s:1", "http_proxy": "http://p:2", "ALL_PROXY": "http://a:3"}
    )
    assert _url(rules, "https", "api.openai.com") == "http://s:1"
    assert _url(rules, "http", "api.openai.com") == "http://p:2"
    only_all = ProxyRules.from_environ({"all_proxy": "http://a:3"})
    assert _url(only_all, "https", "x.com") == _url(only_all, "http", "x.com") == "http://a:3"


def test_lower_case_wins_and_cgi_ignores_upper_case_http_proxy() -> None:
    rules = ProxyRules.from_environ({"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:2"})
    assert _url(rules, "https", "x.com") == "http://low:1"
    cgi = ProxyRules.from_environ({"HTTP_PROXY": "http://header:1", "REQUEST_METHOD": "GET"})
    assert _url(cgi, "http", "x.com") is None
    assert _url(ProxyRules.from_environ({"HTTP_PROXY": "http://up:1"}), "http", "x.com") == "http://up:1"


@pytest.mark.parametrize(
    ("no_proxy", "host", "bypassed"),
    [
        ("*", "anything.com", True),
        ("example.com", "example.com", True),
        ("example.com", "api.EXAMPLE.com", True),
        (".example.com", "example.com", True),
        (".example.com", "api.example.com", True),
        ("example.com", "notexample.com", False),
        ("example.com", "example.com.evil.net", False),
        ("10.0.0.0/8, 192.168.1.5", "10.2.3.4", True),
        ("10.0.0.0/8 192.168.1.5", "192.168.1.5", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("[2001:db8::]/32", "2001:db8::1", True),
        ("2001:db8::1", "[2001:db8::1]", True),
        ("", "example.com", False),
    ],
)
def test_no_proxy_entries(no_proxy: str, host: str, bypassed: bool) -> None:
    rules = ProxyRules.from_environ({"https_proxy": "http://proxy:3128", "NO_PROXY": no_proxy})
    assert rules.bypasses(host) is bypassed
    assert (_url(rules, "https", host) is None) is bypassed


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "api.localhost"])
def test_loopback_hosts_never_take_the_environments_proxy(host: str) -> None:
    rules = ProxyRules.from_environ({"ALL_PROXY": "http://proxy:3128"})
    assert rules.for_url("https", host) is None
    assert rules.for_url("https", host, "http://route-proxy:8080") == Proxy.parse(
        "http://route-proxy:8080", source="t"
    )


@pytest.mark.parametrize("value", ["socks5://p:1080", "https://p:443", "http://:80", "http://p:port"])
def test_a_proxy_variable_the_client_cannot_use_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigError, match="HTTPS_PROXY"):
        ProxyRules.from_environ({"HTTPS_PROXY": value})


def test_tunnels_and_tls_work_on_uvloop_as_runs_use_it(ca: trustme.CA, ca_file: Path) -> None:
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> tuple[list[object], int]:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(HOST).configure_cert(context)
        provider = await RawServer(fixed("200 OK", b'{"loop": "uvloop"}')).start(context)
        proxy = await ConnectProxy(provider.port).start()
        transport = HttpTransport(environ={"HTTPS_PROXY": proxy.url, "SSL_CERT_FILE": str(ca_file)})
        try:
            replies = [
                (await transport.post_json(f"https://{HOST}/v1/chat", {}, timeout_s=10)).json()
                for _ in range(2)
            ]
        finally:
            await transport.aclose()
            await proxy.close()
            await provider.close()
        return replies, len(proxy.connects)

    replies, tunnels = uvloop.run(scenario())
    assert replies == [{"loop": "uvloop"}] * 2
    assert tunnels == 1
