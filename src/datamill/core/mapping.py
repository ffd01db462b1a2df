"""Column mappings for adaptation runs: which dataset columns play which role.

A mapping picks one of three modes (Adaption API):

- **prompt**: a ``prompt`` column, an optional ``completion`` column and optional ``context`` columns.
- **universal_prompt**: one instruction (free text, not a column) folded into every row, which needs at least
  one ``context`` column or an ``image`` column to work on; ``completion`` is optional.
- **chat**: one ``chat`` column holding conversations. It is exclusive: no prompt, completion, context or
  universal prompt.

``image`` names a per-row image column. It may be added to any mode but never used alone, and it is folded
into ``context`` automatically (the image is context for the model). A column can have only one role.

`parse_column_mapping` checks the shape and the rules; `check_columns` checks the names against the columns a
dataset really has, which is known only later, once the file has been read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from datamill.core.errors import Issue, ValidationError
from datamill.core.fields import Issues, join, listing, parse_with, read_object, read_str, read_str_list

#: The longest universal prompt accepted, in characters (the same cap as a brand blueprint).
MAX_UNIVERSAL_PROMPT_CHARS = 20_000

MAPPING_FIELDS = ("prompt", "completion", "chat", "context", "universal_prompt", "image")
_COLUMN_FIELDS = ("prompt", "completion", "chat", "image")


class MappingMode(StrEnum):
    """How rows become training examples."""

    PROMPT = "prompt"
    UNIVERSAL_PROMPT = "universal_prompt"
    CHAT = "chat"


class MappedColumns(Protocol):
    """Anything that names dataset columns by role (both mapping types)."""

    def columns(self) -> list[tuple[str, str]]:
        """Each (field path relative to the mapping, column name) pair, in wire order."""
        ...


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """A validated adaptation column mapping; build one with `parse_column_mapping`.

    Attributes:
        prompt: the prompt column (prompt mode).
        completion: the completion column, optional in prompt and universal-prompt modes.
        chat: the conversation column (chat mode).
        context: context columns; includes the image column when there is one.
        universal_prompt: one instruction applied to every row (universal-prompt mode); free text.
        image: the per-row image column.
    """

    prompt: str | None = None
    completion: str | None = None
    chat: str | None = None
    context: tuple[str, ...] = ()
    universal_prompt: str | None = None
    image: str | None = None

    @property
    def mode(self) -> MappingMode:
        if self.chat is not None:
            return MappingMode.CHAT
        if self.universal_prompt is not None:
            return MappingMode.UNIVERSAL_PROMPT
        return MappingMode.PROMPT

    def columns(self) -> list[tuple[str, str]]:
        """Each (role path, column) pair; the image column is listed once, as ``image``."""
        pairs = [(name, col) for name in ("prompt", "completion", "chat") if (col := getattr(self, name))]
        pairs += [(join("context", i), col) for i, col in enumerate(self.context) if col != self.image]
        if self.image is not None:
            pairs.append(("image", self.image))
        return pairs

    def to_dict(self) -> dict[str, object]:
        """The wire shape: set keys only, ``context`` as a list (with the image column folded in)."""
        out: dict[str, object] = {}
        for name in MAPPING_FIELDS:
            value = getattr(self, name)
            if name == "context":
                if value:
                    out[name] = list(value)
            elif value is not None:
                out[name] = value
        return out


def parse_column_mapping(value: object, field: str = "column_mapping") -> ColumnMapping:
    """Validate a wire-shaped column mapping and return it, or raise a `ValidationError` with every issue."""
    return parse_with(read_column_mapping, value, field)


def read_column_mapping(value: object, field: str, issues: Issues) -> ColumnMapping | None:
    """Reader form of `parse_column_mapping`, for composing into larger requests (see `core.fields`)."""
    before = len(issues)
    obj = read_object(value, field, MAPPING_FIELDS, issues)
    if obj is None:
        return None
    cols = {name: read_str(obj.get(name), join(field, name), issues) for name in _COLUMN_FIELDS}
    context = read_str_list(obj.get("context"), join(field, "context"), issues)
    universal = read_str(
        obj.get("universal_prompt"),
        join(field, "universal_prompt"),
        issues,
        max_length=MAX_UNIVERSAL_PROMPT_CHARS,
    )
    mapping = ColumnMapping(context=context or (), universal_prompt=universal, **cols)
    # Mode rules look at which keys were given, so a value of the wrong type is reported once, not twice.
    given = {name for name in MAPPING_FIELDS if obj.get(name) is not None}
    context_given = bool(context) or (context is None and "context" in given)
    _check_mode(mapping, given, context_given, field, issues)
    check_unique_columns(mapping, field, issues)
    if len(issues) > before:
        return None
    if mapping.image is not None and mapping.image not in mapping.context:
        mapping = replace(mapping, context=(*mapping.context, mapping.image))
    return mapping


def _check_mode(
    mapping: ColumnMapping, given: set[str], context_given: bool, field: str, issues: Issues
) -> None:
    if "chat" in given:
        for name in ("prompt", "completion", "universal_prompt"):
            if name in given:
                issues.add(
                    join(field, name),
                    f"{name} is not allowed in chat mode: chat is exclusive (only image may go with it)",
                )
        if any(col != mapping.image for col in mapping.context):
            issues.add(
                join(field, "context"),
                "context is not allowed in chat mode: chat is exclusive (only image may go with it)",
            )
    elif "prompt" in given:
        if "universal_prompt" in given:
            issues.add(
                join(field, "universal_prompt"),
                "universal_prompt cannot be combined with prompt: use a prompt column (prompt mode) or one "
                "instruction for every row (universal_prompt), not both",
            )
    elif "universal_prompt" in given:
        if not context_given and "image" not in given:
            issues.add(
                join(field, "context"),
                "universal-prompt mode needs at least one context column (or an image column) to work on",
            )
    elif "image" in given:
        issues.add(
            join(field, "image"),
            "image cannot be used alone: add prompt, chat or universal_prompt to choose a mode",
        )
    else:
        issues.add(
            field or "column_mapping",
            "choose a mode: set prompt (a prompt column), chat (a conversation column) or "
            "universal_prompt (one instruction for every row)",
        )


def check_unique_columns(mapping: MappedColumns, field: str, issues: Issues) -> None:
    """Record an issue for each column that a mapping gives a second role."""
    seen: dict[str, str] = {}
    for path, column in mapping.columns():
        if column in seen:
            issues.add(
                join(field, path),
                f"column {column!r} is already mapped as {seen[column]}; a column can have only one role",
            )
        else:
            seen[column] = path


def check_columns(mapping: MappedColumns, available: Sequence[str], field: str = "column_mapping") -> None:
    """Check that every column a mapping names exists in the dataset.

    Args:
        mapping: a `ColumnMapping` or `SourceColumnMapping`.
        available: the dataset's column names, in file order.
        field: the dotted path of the mapping in the request, for the issues.

    Raises:
        ValidationError: one issue per unknown column, each listing the available columns.
    """
    present = set(available)
    issues = [
        Issue(
            join(field, path),
            f"column {column!r} is not in the dataset; available columns: {listing(available)}",
        )
        for path, column in mapping.columns()
        if column not in present
    ]
    if issues:
        raise ValidationError(issues)
