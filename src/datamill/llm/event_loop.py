"""The event loop datamill's own entry points run on: uvloop's where it is installed, else asyncio's.

A run spends much of its CPU in the event loop and the transport (hundreds of model calls in flight), and
uvloop's loop and TCP transports are written in C: the pipeline benchmark measured 6–9% less CPU per row
with it. uvloop is a dependency on Linux and macOS (it has no Windows build), so ``auto``, the default,
takes it there and asyncio's loop elsewhere. ``asyncio`` picks the standard loop (to rule the loop out when
chasing a problem); ``uvloop`` insists on uvloop and says what to install when it is missing. The entry
points pass the choice of ``DATAMILL_EVENT_LOOP`` (`datamill.services.settings.entry`). Code that runs
inside someone else's loop (a notebook, a web server, pytest-asyncio) is unaffected: only `run` chooses a
loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from datamill.core.errors import ConfigError

T = TypeVar("T")

#: The setting naming the loop: ``auto`` (default: uvloop if installed), ``uvloop``, ``asyncio``.
EVENT_LOOP_ENV = "DATAMILL_EVENT_LOOP"
_CHOICES = ("auto", "uvloop", "asyncio")


def loop_factory(choice: str = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the event loop `choice` names, or None for asyncio's default."""
    choice = choice.strip().lower() or "auto"
    wanted = "uvloop (pip install uvloop)"
    if choice not in _CHOICES:
        raise ConfigError(f"{EVENT_LOOP_ENV} must be one of {', '.join(_CHOICES)}, not {choice!r}")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError as exc:
        if choice == "uvloop":
            raise ConfigError(f"{EVENT_LOOP_ENV} asks for {wanted}, which is not installed") from exc
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], loop: str = "auto") -> T:
    """``asyncio.run(main)`` on the event loop `loop` names (see `loop_factory`)."""
    try:
        factory = loop_factory(loop)
    except ConfigError:
        main.close()  # never started: close it so it is not reported as never awaited
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
