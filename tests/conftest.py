"""Suite-wide guard and shared fixtures.

No test may reach a remote model: the network guard refuses non-loopback hosts in this process, and the
variable that turns it on is set for the commands tests start. `stub` is a recording loopback HTTP server
for provider tests.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from datamill.llm.guard import block_remote
from http_stubs import StubServer

os.environ["DATAMILL_BLOCK_REMOTE_MODELS"] = "1"
block_remote(True)


@pytest.fixture
async def stub() -> AsyncIterator[StubServer]:
    server = StubServer()
    await server.start()
    yield server
    await server.close()
