"""Entry points run on uvloop by default, on asyncio's loop when asked, and name a bad choice."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from datamill.core.errors import ConfigError
from datamill.llm import event_loop
from datamill.services.settings.entry import Settings


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def _choice(value: str | None) -> str:
    """The loop the entry points pass for a value of DATAMILL_EVENT_LOOP (None: unset)."""
    env = {} if value is None else {event_loop.EVENT_LOOP_ENV: value}
    return Settings.from_env(env).event_loop


@pytest.mark.parametrize("choice", [None, "", "auto", "uvloop"])
def test_uvloop_by_default_and_when_asked(choice: str | None) -> None:
    assert event_loop.run(_loop_type(), _choice(choice)) is uvloop.Loop
    assert event_loop.run(_loop_type()) is uvloop.Loop


def test_the_standard_loop_when_asked() -> None:
    loop_type = event_loop.run(_loop_type(), _choice("ASYNCIO "))
    assert loop_type is not uvloop.Loop
    assert issubclass(loop_type, asyncio.BaseEventLoop)


def test_a_bad_choice_names_the_variable_and_the_choices() -> None:
    expected = "DATAMILL_EVENT_LOOP must be one of auto, uvloop, asyncio, not 'tokio'"
    with pytest.raises(ConfigError, match=expected):
        event_loop.run(_loop_type(), _choice("tokio"))


def test_without_uvloop_the_default_falls_back_to_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "uvloop", None)  # as on Windows, where it has no build
    assert event_loop.loop_factory() is None


def test_asking_for_uvloop_without_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "uvloop", None)  # import uvloop now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install uvloop"):
        event_loop.loop_factory("uvloop")
