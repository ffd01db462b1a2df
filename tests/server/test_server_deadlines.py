"""Read deadlines: slow request headers (slowloris) get 408 and a closed connection, a stalled body a
closed connection, and a prompt client on a kept-alive connection is never cut off."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from conftest import RunningServer, running_server
from datamill.server.deadlines import server_config
from datamill.services.settings.server import ServerSettings

LIMIT_S = 1.0


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = ServerSettings.for_data_dir(
        tmp_path_factory.mktemp("deadlines"), header_timeout_s=LIMIT_S, body_timeout_s=LIMIT_S
    )
    with running_server(settings) as running:
        yield running


def test_the_deadlines_are_read_from_the_environment(tmp_path: Any) -> None:
    env = {"DATAMILL_HOME": str(tmp_path), "DATAMILL_HEADER_TIMEOUT_S": "3", "DATAMILL_BODY_TIMEOUT_S": "7.5"}
    settings = ServerSettings.from_env(env)
    assert (settings.header_timeout_s, settings.body_timeout_s) == (3.0, 7.5)
    assert ServerSettings.from_env({"DATAMILL_HOME": str(tmp_path)}).header_timeout_s == 10.0


def _connect(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _drain(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    start = time.monotonic()
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received, time.monotonic() - start


def _trickle(sock: socket.socket, data: bytes, every_s: float, stop: threading.Event) -> None:
    for byte in data:
        if stop.is_set():
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return
        time.sleep(every_s)


def test_slow_headers_get_408_and_a_closed_connection(strict: RunningServer) -> None:
    socks = [_connect(strict.base_url) for _ in range(10)]
    stop = threading.Event()
    header = b"GET /api/v1/datasets HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
    threads = [threading.Thread(target=_trickle, args=(s, header, 0.2, stop), daemon=True) for s in socks]
    for thread in threads:
        thread.start()
    try:
        answers = [_drain(sock) for sock in socks]
    finally:
        stop.set()
        for sock in socks:
            sock.close()
    for received, took in answers:
        assert received.startswith(b"HTTP/1.1 408 ")
        assert b"request headers took too long" in received
        assert took < LIMIT_S + 5  # cut at the deadline, not when the trickle ends (40 s)


def test_a_stalled_body_closes_the_connection(strict: RunningServer) -> None:
    with _connect(strict.base_url) as sock:
        sock.sendall(
            b"PUT /_uploads/upl_x?token=t HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10
        )
        received, took = _drain(sock)
    assert took < LIMIT_S + 5
    assert b"200 OK" not in received


def test_a_prompt_client_keeps_its_connection_across_idle_time(strict: RunningServer) -> None:
    key = strict.new_key()
    request = f"GET /api/v1/datasets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
    with _connect(strict.base_url) as sock:
        sock.sendall(request)
        first = sock.recv(65536)
        time.sleep(LIMIT_S * 2)  # idle past the header deadline, within uvicorn's keep-alive (5 s)
        sock.sendall(request)
        second = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 ")
    assert second.startswith(b"HTTP/1.1 200 ")


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("kind", ["h11", "httptools"])
def test_both_http_implementations_enforce_the_header_deadline(tmp_path: Any, kind: Any) -> None:
    settings = ServerSettings.for_data_dir(tmp_path, header_timeout_s=LIMIT_S)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(server_config(_hello, settings, http=kind, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        with _connect(f"http://127.0.0.1:{port}") as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).endswith(b"ok")
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            received, took = _drain(sock)
        assert received.startswith(b"HTTP/1.1 408 ")
        assert took < LIMIT_S + 5
    finally:
        server.should_exit = True
        thread.join(10)
