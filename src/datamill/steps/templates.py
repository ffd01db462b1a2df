"""Prompt templates: YAML files of chat messages whose contents are Jinja2 templates.

Templates live in ``datamill/steps/prompts/<name>.yaml``, are versioned like code, and are compiled once per
process. A template file holds a ``version`` and a ``messages`` list (role + content), so few-shot examples
are ordinary messages. A message with no Jinja markup (most few-shot turns) is kept as its text, not
compiled: rendering a Jinja template costs a context per call, and a rephrase request has seven messages.

A message may carry ``cache: true``: it ends the template's *stable prefix*, the turns that are the same for
every row of a run (instructions, few-shot turns, the blueprint, a rubric, seed examples). Templates put that
prefix first and the row's own content after it, so providers can serve the prefix from their prompt cache;
the rendered message gets `Message.cache_point` (when it renders empty, the message before it does).

`with_images` attaches a row's images to the last user message of a rendered prompt: the turn that holds the
row (few-shot turns come before it), so the model sees the image with the text it belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jinja2
import yaml

from datamill.core.errors import ConfigError
from datamill.llm.types import ImagePart, Message, Role

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
_ROLES: tuple[Role, ...] = ("system", "user", "assistant")


@dataclass(frozen=True)
class PromptTemplate:
    """A compiled prompt: render it with the row's variables to get the messages to send."""

    name: str
    version: int
    parts: tuple[tuple[Role, jinja2.Template | str], ...]
    #: Index in ``parts`` of the message that ends the stable prefix (``cache: true``), if any.
    cache_part: int | None = None

    def render(self, **variables: Any) -> tuple[Message, ...]:
        messages: list[Message] = []
        for index, (role, template) in enumerate(self.parts):
            text = template if isinstance(template, str) else _render(template, variables).strip()
            if text:
                messages.append(Message(role, text))
            if index == self.cache_part and messages:
                last = messages[-1]
                messages[-1] = Message(last.role, last.content, last.images, cache_point=True)
        return tuple(messages)


def _render(template: jinja2.Template, variables: dict[str, Any]) -> str:
    """``template.render(**variables)`` at a third of the cost.

    ``Template.render`` copies the template's globals (a ChainMap over the environment's) into every new
    context; here they are copied once per template and the row's variables laid over a plain dict. On an
    error the regular ``render`` runs again, so the exception and its template traceback are Jinja's own.
    """
    base: dict[str, Any] | None = getattr(template, _GLOBALS, None)
    if base is None:
        base = dict(template.globals)
        setattr(template, _GLOBALS, base)
    try:
        context = template.new_context({**base, **variables}, shared=True)
        return str(template.environment.concat(template.root_render_func(context)))
    except Exception:
        return template.render(**variables)


#: The attribute of a compiled template that holds its globals as a plain dict.
_GLOBALS = "_datamill_globals"


def with_images(messages: tuple[Message, ...], images: Sequence[ImagePart]) -> tuple[Message, ...]:
    """``messages`` with ``images`` added to the last user message; unchanged when there are none."""
    if not images:
        return messages
    for i in range(len(messages) - 1, -1, -1):
        turn = messages[i]
        if turn.role == "user":
            seen = Message("user", turn.content, (*turn.images, *images), turn.cache_point)
            return (*messages[:i], seen, *messages[i + 1 :])
    return messages


def without_cache_point(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """``messages`` with no `Message.cache_point`: for a prefix no other request shares."""
    return tuple(Message(m.role, m.content, m.images) if m.cache_point else m for m in messages)


@cache
def load_template(name: str) -> PromptTemplate:
    """Load and compile ``prompts/<name>.yaml`` from the package."""
    path = resources.files("datamill.steps") / "prompts" / f"{name}.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"prompt template {name!r} not found") from exc
    parts: list[tuple[Role, jinja2.Template | str]] = []
    cache_part = None
    for i, item in enumerate(doc.get("messages") or []):
        role = item.get("role")
        if role not in _ROLES:
            raise ConfigError(f"prompt template {name!r}: messages[{i}].role must be one of {_ROLES}")
        parts.append((role, _compile(str(item.get("content", "")))))
        if item.get("cache"):
            cache_part = i
    if not parts:
        raise ConfigError(f"prompt template {name!r} has no messages")
    return PromptTemplate(
        name=name, version=int(doc.get("version", 1)), parts=tuple(parts), cache_part=cache_part
    )


def _compile(source: str) -> jinja2.Template | str:
    """A Jinja template, or the stripped text itself when ``source`` has no Jinja markup."""
    if any(marker in source for marker in ("{{", "{%", "{#")):
        return _ENV.from_string(source)
    return source.strip()
