"""A switch that refuses model and fetch requests to hosts other than loopback.

Off by default. Entry points turn it on when ``DATAMILL_BLOCK_REMOTE_MODELS=1`` is set (see
`datamill.services.settings.entry`); test suites turn it on with `block_remote` so that no test can reach
a real provider. The transport checks it before dialling a model's host and the safe fetcher before
dialling any address, so a blocked request fails with an error that names the switch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

#: The environment variable the entry points read to turn the switch on.
BLOCK_REMOTE_ENV = "DATAMILL_BLOCK_REMOTE_MODELS"

_state = {"blocked": False}


def block_remote(blocked: bool = True) -> None:
    """Turn the switch on (or off)."""
    _state["blocked"] = blocked


def remote_blocked() -> bool:
    """True while requests to hosts other than loopback are refused."""
    return _state["blocked"]


@contextmanager
def remote_allowed() -> Iterator[None]:
    """Turn the switch off for the duration of a ``with`` block, then back to what it was."""
    before = _state["blocked"]
    _state["blocked"] = False
    try:
        yield
    finally:
        _state["blocked"] = before
