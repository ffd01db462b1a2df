"""The Jinja environment every user's prompt template renders in: Jinja's sandbox, with limits on size.

Prompt templates come from users: a custom step's template, a folder of overrides on the command line, and
on the server a tenant's run request. They all compile here (only the package's own templates, reviewed
code, do not: `datamill.steps.templates`), in Jinja's `ImmutableSandboxedEnvironment`
(the Jinja project's own answer to untrusted templates), so a template reads the row's values and nothing
else:

- attributes and items whose names start with ``_`` (``__class__``, ``__globals__``, ``__mro__``, ...) are
  refused twice: `check_source` refuses a template that names one before any row is rendered, and the
  sandbox refuses one reached any other way while rendering (`jinja2.sandbox.SecurityError`);
- methods that change a value (``list.append``, ``dict.update``) are refused, and ``range`` is capped at
  `MAX_RANGE` items;
- ``*`` and ``**`` are checked before they run, so ``{{ "x" * 10**9 }}`` fails instead of filling memory;
- a template is at most `MAX_TEMPLATE_CHARS` characters (`check_source`), and a rendered message at most
  `MAX_RENDERED_CHARS` (`render_capped`).

A template stuck in deep loops still costs CPU time: the sandbox bounds what a template can reach and the
size of what it makes, not how long it runs.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from datamill.core.custom_request import MAX_TEMPLATE_CHARS

#: The longest message a template may render, in characters.
MAX_RENDERED_CHARS = 400_000
#: The most items ``range`` gives, and the longest value ``*`` may make.
MAX_RANGE = 10_000
_MAX_POWER = 10**12

__all__ = ["SANDBOX", "SecurityError", "check_source", "compile_template", "render_capped"]


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with ``*`` and ``**`` checked and ``range`` capped (module docstring)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for value, times in ((left, right), (right, left)):
                if isinstance(value, Sized) and isinstance(times, int) and len(value) * times > MAX_RANGE:
                    raise SecurityError(f"repeating a value to more than {MAX_RANGE} items is not allowed")
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("a power above 64 is not allowed")
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, int) and abs(result) > _MAX_POWER**4:
            raise SecurityError("a number that large is not allowed")
        return result


def _capped_range(*args: int) -> range:
    items = range(*args)
    if len(items) > MAX_RANGE:
        raise SecurityError(f"range() gives at most {MAX_RANGE} items")
    return items


SANDBOX = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
SANDBOX.globals["range"] = _capped_range


def compile_template(source: str) -> jinja2.Template:
    """`source` compiled in the sandbox, after `check_source`.

    Raises:
        jinja2.TemplateSyntaxError: `source` is not a Jinja template.
        SecurityError: `check_source` refuses it, or it nests too deeply to compile.
    """
    try:
        refused = check_source(source)
        if refused is not None:
            raise SecurityError(refused)
        return SANDBOX.from_string(source)
    except (RecursionError, SyntaxError):  # Jinja's parser and Python's compiler recurse per nesting level
        raise SecurityError("the template nests too deeply") from None


def check_source(source: str) -> str | None:
    """Why `source` is refused before it is compiled (its size, a name that starts with ``_``), or None.

    Raises:
        jinja2.TemplateSyntaxError: `source` is not a Jinja template.
    """
    if len(source) > MAX_TEMPLATE_CHARS:
        return f"the template is {len(source)} characters long; the maximum is {MAX_TEMPLATE_CHARS}"
    for node in SANDBOX.parse(source).find_all((nodes.Getattr, nodes.Getitem, nodes.Name, nodes.Const)):
        name = _name_of(node)
        if name is not None and name.startswith("_"):
            return f"a template may not use names that start with '_' ({name!r})"
    return None


def _name_of(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr):
        return str(node.attr)
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return node.arg.value
    if isinstance(node, nodes.Name):
        return str(node.name)
    if isinstance(node, nodes.Const) and isinstance(node.value, str) and node.value.startswith("__"):
        return node.value  # |attr('__class__'), a lookup by a string the template spells out
    return None


def render_capped(template: jinja2.Template, variables: dict[str, Any]) -> str:
    """``template.render(**variables)``, refused when the text is longer than `MAX_RENDERED_CHARS`."""
    text = template.render(**variables)
    if len(text) > MAX_RENDERED_CHARS:
        raise SecurityError(
            f"the rendered message is {len(text)} characters; the maximum is {MAX_RENDERED_CHARS}"
        )
    return text
