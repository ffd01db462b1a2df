"""Turning datamill errors into messages that say what to do, and exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from datamill.core.errors import (
    ConfigError,
    DataFormatError,
    DatamillError,
    ModelError,
    UnknownModelError,
    ValidationError,
)

F = TypeVar("F", bound=Callable[..., Any])

#: Wire field paths shown as the flag a CLI user typed.
FLAG_NAMES = {
    "column_mapping": "--prompt/--universal-prompt",
    "column_mapping.prompt": "--prompt",
    "column_mapping.completion": "--completion",
    "column_mapping.context": "--context",
    "column_mapping.universal_prompt": "--universal-prompt",
    "column_mapping.image": "--image",
    "brand_controls.length": "--length",
    "brand_controls.blueprint": "--blueprint",
    "job_specification.max_rows": "--max-rows",
    "recipe_specification.recipes": "--recipes",
}


def _flag(field: str) -> str:
    for path, flag in FLAG_NAMES.items():
        if field == path or field.startswith(path + "["):
            return f"{flag} ({field})"
    return field


def handle_errors(func: F) -> F:
    """Print datamill errors as one clear message and exit non-zero instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationError as exc:
            lines = [f"  {_flag(i.field)}: {i.reason}" for i in exc.issues]
            _fail("invalid options:\n" + "\n".join(lines), code=2)
        except DataFormatError as exc:
            _fail(f"cannot read {exc}", code=2)
        except UnknownModelError as exc:
            _fail(f"{exc}\n  Pass --model with one of these, or add a route (see `datamill models`).", code=2)
        except ConfigError as exc:
            _fail(f"configuration: {exc}", code=2)
        except ModelError as exc:
            _fail(f"model call failed: {exc}", code=1)
        except DatamillError as exc:
            _fail(str(exc), code=1)
        except KeyboardInterrupt:
            _fail(interrupted_hint(kwargs), code=130)

    return wrapper  # type: ignore[return-value]


#: Commands whose work a second run picks up (checkpointed batches, cached model calls).
_RESUMABLE = frozenset({"adapt", "demo", "generate", "create", "evaluate"})


def interrupted_hint(flags: dict[str, Any]) -> str:
    """What a Ctrl-C leaves behind and how to go on: the same command resumes (not a bare "Aborted!")."""
    context = click.get_current_context(silent=True)
    command = context.command_path if context is not None else "the command"
    if context is None or context.info_name not in _RESUMABLE:
        return "interrupted."
    if flags.get("no_cache"):
        kept = "nothing is kept with --no-cache"
        if context is not None and context.info_name in ("adapt", "demo"):
            kept = "the finished batches are kept"
        return f"interrupted; {kept}. Run the same `{command}` command again to go on."
    if context is not None and context.info_name in ("adapt", "demo"):
        kept = "the finished batches are kept and the answered model calls are in the response cache"
    else:
        kept = "the answered model calls are in the response cache and are not paid for again"
    return f"interrupted; {kept}. Run the same `{command}` command again to resume."


def _fail(message: str, *, code: int) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    raise SystemExit(code)
