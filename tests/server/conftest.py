"""The real server on a loopback port (uvicorn in a background thread, a temporary data dir), and SDK clients.

`server` is shared by the whole session; tests isolate themselves by tenant (`server.client()` makes a new
tenant each time), which is also what the server promises its users.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import adaption
import pytest
import uvicorn

from datamill.server import create_app
from datamill.server.context import ServerContext
from datamill.server.deadlines import server_config
from datamill.services.settings.server import ServerSettings
from datamill.services.settings.tree import load_settings


@dataclass
class RunningServer:
    """A started server: its URL, settings and services, and a factory of SDK clients."""

    base_url: str
    settings: ServerSettings
    context: ServerContext
    _clients: list[adaption.Adaption] = field(default_factory=list)

    def new_key(self, tenant: str | None = None) -> str:
        return self.context.tenants.create_key(tenant or f"t-{secrets.token_hex(4)}").key

    def client(self, tenant: str | None = None, *, key: str | None = None) -> adaption.Adaption:
        """An SDK client with the key of a new tenant (or of `tenant`, or `key` as given); no retries."""
        api_key = key or self.new_key(tenant)
        made = adaption.Adaption(api_key=api_key, base_url=self.base_url, max_retries=0)
        self._clients.append(made)
        return made

    def close_clients(self) -> None:
        for made in self._clients:
            made.close()
        self._clients.clear()


@contextmanager
def running_server(
    settings: ServerSettings, *, context: ServerContext | None = None, env: Mapping[str, str] | None = None
) -> Iterator[RunningServer]:
    """Serve `create_app` on a free loopback port: around `context`, else built from `settings` and the
    other sections of the settings tree the variables `env` describe."""
    if context is None:
        tree = load_settings(env or {}, data_dir=settings.data_dir)
        context = ServerContext.build(settings, runs=tree.runs, llm=tree.llm, publish=tree.publish)
    app = create_app(context=context)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = server_config(app, settings, log_level="warning", ws="none", http="h11", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    running = RunningServer(f"http://127.0.0.1:{port}", settings, context)
    try:
        yield running
    finally:
        running.close_clients()
        server.should_exit = True
        thread.join(20)
        sock.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = ServerSettings.for_data_dir(tmp_path_factory.mktemp("server"), max_upload_bytes=1 << 20)
    with running_server(settings) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> adaption.Adaption:
    """An SDK client of a fresh tenant."""
    return server.client()
