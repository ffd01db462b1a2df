"""Suite-wide guard and shared fixtures.

No test may reach a remote model: the HTTP transport refuses non-loopback hosts. `stub` is a recording
loopback HTTP server for provider tests.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from http_stubs import StubServer

os.environ["DATAMILL_BLOCK_REMOTE_MODELS"] = "1"


@pytest.fixture
async def stub() -> AsyncIterator[StubServer]:
    server = StubServer()
    await server.start()
    yield server
    await server.close()
