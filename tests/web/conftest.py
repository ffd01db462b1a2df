"""Fixtures of the web app tests: the real server on a loopback port with the fake model, and a browser.

The server helpers live beside the server tests; they import ``conftest`` by bare name, and every
conftest module is called ``conftest``, so this one loads the server tests' conftest by path and re-exports
what they need. The browser is Debian's chromium driven by Playwright (never a downloaded browser); without
it the browser tests are skipped, except in CI (``CI`` set), where they must run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from server_conftest import SERVER_TESTS, load_server_conftest

if str(SERVER_TESTS) not in sys.path:
    sys.path.insert(0, str(SERVER_TESTS))


_server = load_server_conftest()
RunningServer = _server.RunningServer
running_server = _server.running_server

from runs_helpers import runs_server  # noqa: E402
from web_helpers import Screenshots, chromium_path, new_browser, screenshot_folder  # noqa: E402


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server with runs on the fake model, for one test module."""
    with runs_server(tmp_path_factory.mktemp("web")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.skip(
            "chromium is not installed (scripts/install-chromium.sh installs it); CI runs these tests"
        )
    with new_browser(path) as launched:
        yield launched


@pytest.fixture(scope="session")
def screenshot(tmp_path_factory: pytest.TempPathFactory) -> Screenshots:
    """Saves screenshots: into pytest's tmp dir, or ``docs/screenshots`` when asked to refresh them."""
    return Screenshots(screenshot_folder(tmp_path_factory.mktemp("screenshots")))
