"""Prompt templates: YAML files of chat messages whose contents are Jinja2 templates.

Templates live in ``datamill/steps/prompts/<name>.yaml``, are versioned like code, and are compiled once per
process. A template file holds a ``version`` and a ``messages`` list (role + content), so few-shot examples
are ordinary messages. A message with no Jinja markup (most few-shot turns) is kept as its text, not
compiled: rendering a Jinja template costs a context per call, and a rephrase request has seven messages.

A message may carry ``cache: true``: it ends the template's *stable prefix*, the turns that are the same for
every row of a run (instructions, few-shot turns, the blueprint, a rubric, seed examples). Templates put that
prefix first and the row's own content after it, so providers can serve the prefix from their prompt cache;
the rendered message gets `Message.cache_point` (when it renders empty, the message before it does).

**Your own templates.** A folder of ``<name>.yaml`` files in the same format overrides the built-in prompts
of the same names (`use_templates`, which the command line's ``--templates`` / ``DATAMILL_TEMPLATES`` and the
Python API's ``templates=`` set for a run): the steps load their templates from it first. A file whose name no
built-in template has is an error, so a typo does not silently leave the built-in in place. The run's
checkpoint fingerprint includes the folder's digest (`templates_digest`), and the response cache keys on the
rendered messages, so a changed template is never answered from old results.

A run request may carry templates too (``prompt_templates``, as documents of the same shape): they are
compiled by `compile_documents`, which names each problem by its field, and laid over the folder's and the
built-ins by `use_templates` and `add_templates`.

Every template a user gives (a folder's, a request's) compiles in the sandbox of `datamill.steps.sandbox`:
it reads the variables it is given and nothing else. The package's own templates, reviewed code, compile
outside it, where they render at a third of the sandbox's cost per row.

`with_images` attaches a row's images to the last user message of a rendered prompt: the turn that holds the
row (few-shot turns come before it), so the model sees the image with the text it belongs to.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml

from datamill.core.errors import ConfigError, ValidationError
from datamill.llm.types import ImagePart, Message, Role
from datamill.steps.sandbox import MAX_RENDERED_CHARS, SecurityError, compile_template

_ROLES: tuple[Role, ...] = ("system", "user", "assistant")


@dataclass(frozen=True)
class PromptTemplate:
    """A compiled prompt: render it with the row's variables to get the messages to send."""

    name: str
    version: int
    parts: tuple[tuple[Role, jinja2.Template | str], ...]
    #: Index in ``parts`` of the message that ends the stable prefix (``cache: true``), if any.
    cache_part: int | None = None
    #: The request field a request's template came from (``prompt_templates.<name>``): its errors are the
    #: request's (`ValidationError`), not the configuration's.
    field: str | None = None

    def render(self, **variables: Any) -> tuple[Message, ...]:
        messages: list[Message] = []
        for index, (role, template) in enumerate(self.parts):
            try:
                text = template if isinstance(template, str) else _render(template, variables).strip()
            except jinja2.UndefinedError as exc:
                raise self._error(f"{exc.message} (it has: {', '.join(sorted(variables))})") from exc
            except jinja2.TemplateError as exc:  # the sandbox's refusals
                raise self._error(f"cannot be rendered: {exc}") from exc
            except RecursionError:
                raise self._error("cannot be rendered: it nests too deeply") from None
            if text:
                messages.append(Message(role, text))
            if index == self.cache_part and messages:
                last = messages[-1]
                messages[-1] = Message(last.role, last.content, last.images, cache_point=True)
        return tuple(messages)

    def _error(self, reason: str) -> ConfigError | ValidationError:
        if self.field is not None:
            return ValidationError.of(self.field, reason)
        return ConfigError(f"prompt template {self.name!r}: {reason}")


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
        text = str(template.environment.concat(template.root_render_func(context)))
    except Exception:
        text = template.render(**variables)
    if len(text) > MAX_RENDERED_CHARS:
        raise SecurityError(
            f"the rendered message is {len(text)} characters; the maximum is {MAX_RENDERED_CHARS}"
        )
    return text


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


@dataclass(frozen=True)
class _Overrides:
    folder: Path | None
    documents: Mapping[str, PromptTemplate]


#: The template overrides of the run in progress (`use_templates`); None: the built-ins only.
_OVERRIDES: ContextVar[_Overrides | None] = ContextVar("datamill_templates", default=None)


@contextmanager
def use_templates(
    folder: Path | str | None, documents: Mapping[str, PromptTemplate] | None = None
) -> Iterator[None]:
    """Load templates from `documents`, then `folder`, then the built-ins while the block runs.

    `documents` are a request's templates as `compile_documents` compiled them.

    Raises:
        ConfigError: the folder does not exist, or holds a file that overrides no built-in template.
    """
    path = Path(folder) if folder is not None else None
    if path is not None:
        check_templates(path)
    given = _Overrides(path, dict(documents or {})) if path is not None or documents else None
    token = _OVERRIDES.set(given)
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


@contextmanager
def add_templates(documents: Mapping[str, PromptTemplate]) -> Iterator[None]:
    """Lay `documents` (a request's templates) over the overrides in force while the block runs."""
    if not documents:
        yield
        return
    current = _OVERRIDES.get()
    folder = current.folder if current is not None else None
    below = current.documents if current is not None else {}
    token = _OVERRIDES.set(_Overrides(folder, {**below, **documents}))
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


def compile_documents(
    documents: Sequence[tuple[str, Mapping[str, object]]], field: str = "prompt_templates"
) -> dict[str, PromptTemplate]:
    """A request's templates (name, document of a prompt file's shape), compiled in the sandbox.

    Raises:
        ValidationError: a name no built-in template has, or a document that is not a valid template (its
            Jinja syntax, a name the sandbox refuses), naming ``prompt_templates.<name>``.
    """
    known = builtin_names()
    compiled: dict[str, PromptTemplate] = {}
    for name, document in documents:
        where = f"{field}.{name}"
        if name not in known:
            raise ValidationError.of(
                where, f"no built-in prompt template has this name (the names: {', '.join(known)})"
            )
        try:
            template = _from_document(name, document, f"prompt template {name!r}")
            compiled[name] = dataclasses.replace(template, field=where)
        except ConfigError as exc:
            raise ValidationError.of(where, str(exc)) from None
    return compiled


def builtin_names() -> list[str]:
    folder = resources.files("datamill.steps") / "prompts"
    return sorted(item.name.removesuffix(".yaml") for item in folder.iterdir() if item.name.endswith(".yaml"))


def check_templates(folder: Path) -> None:
    """Check a folder of overrides: it exists, and each ``.yaml`` file in it is a built-in's name."""
    if not folder.is_dir():
        raise ConfigError(f"templates folder {folder} does not exist")
    known = builtin_names()
    for path in sorted(folder.glob("*.yaml")):
        if path.stem not in known:
            raise ConfigError(
                f"{path}: no built-in prompt template is named {path.stem!r} (the names: {', '.join(known)})"
            )
        _load(path.stem, path.parent, _stamp(path))  # a broken override fails here, before any model call


@contextmanager
def package_templates() -> Iterator[None]:
    """Load the package's own templates only while the block runs, whatever overrides are in force around it.

    The server grades a run with these (`datamill.services.jobs.adaptation`): a tenant's templates change
    the tenant's own steps, never the judges behind the tenant's grade.
    """
    token = _OVERRIDES.set(None)
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


def template_source(name: str) -> str | None:
    """Where `load_template` would take `name` from now; None for the package's own template.

    An override answers the request's field (``prompt_templates.<name>``) or the folder's file.
    """
    overrides = _OVERRIDES.get()
    if overrides is None:
        return None
    if name in overrides.documents:
        return overrides.documents[name].field or f"prompt_templates.{name}"
    folder = overrides.folder
    if folder is not None and (folder / f"{name}.yaml").is_file():
        return str(folder / f"{name}.yaml")
    return None


def templates_digest(folder: Path | str | None) -> str | None:
    """A digest of the overrides in `folder` (names and contents), for a run's fingerprint."""
    if folder is None:
        return None
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.yaml")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def load_template(name: str) -> PromptTemplate:
    """Load and compile ``prompts/<name>.yaml``: the run's override (`use_templates`), else the built-in."""
    overrides = _OVERRIDES.get()
    if overrides is not None:
        if name in overrides.documents:
            return overrides.documents[name]
        folder = overrides.folder
        if folder is not None and (folder / f"{name}.yaml").is_file():
            return _load(name, folder, _stamp(folder / f"{name}.yaml"))
    return _load(name, None, None)


def _stamp(path: Path) -> tuple[int, int]:
    """When the file last changed and its size: an edited override is read again (a notebook edits them)."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@cache
def _load(name: str, folder: Path | None, stamp: tuple[int, int] | None) -> PromptTemplate:
    if folder is None:
        path: Any = resources.files("datamill.steps") / "prompts" / f"{name}.yaml"
        source = f"prompt template {name!r}"
    else:
        path = folder / f"{name}.yaml"
        source = f"prompt template {name!r} ({path})"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"prompt template {name!r} not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    return _from_document(name, doc, source, builtin=folder is None)


def _from_document(name: str, doc: object, source: str, *, builtin: bool = False) -> PromptTemplate:
    """A template from its document (``version`` and ``messages``); `source` names it in errors.

    A user's template (`builtin` False) compiles in the sandbox; the package's own in `_BUILTIN`.
    """
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{source} must be a mapping with version and messages")
    parts: list[tuple[Role, jinja2.Template | str]] = []
    cache_part = None
    for i, item in enumerate(doc.get("messages") or []):
        role = item.get("role") if isinstance(item, dict) else None
        if role not in _ROLES:
            raise ConfigError(f"{source}: messages[{i}].role must be one of {_ROLES}")
        try:
            parts.append((role, _compile(str(item.get("content", "")), builtin=builtin)))
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(
                f"{source}: messages[{i}].content is not a valid Jinja template: {exc}"
            ) from exc
        except SecurityError as exc:
            raise ConfigError(f"{source}: messages[{i}].content is refused: {exc}") from exc
        if item.get("cache"):
            cache_part = i
    if not parts:
        raise ConfigError(f"{source} has no messages")
    return PromptTemplate(
        name=name, version=int(doc.get("version", 1)), parts=tuple(parts), cache_part=cache_part
    )


def _compile(source: str, *, builtin: bool = False) -> jinja2.Template | str:
    """A Jinja template, or the stripped text itself when ``source`` has no Jinja markup."""
    if any(marker in source for marker in ("{{", "{%", "{#")):
        if builtin:
            return _BUILTIN.from_string(source)
        return compile_template(source)
    return source.strip()


#: The package's own templates (``prompts/``, reviewed code) render outside the sandbox, at a third of its
#: cost per row; every template a user gives renders in it.
_BUILTIN = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
