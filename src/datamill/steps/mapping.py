"""Column mapping: turns a source row into datamill's canonical columns.

Prompt mode: the prompt column becomes ``original_prompt``; in universal-prompt mode every row gets the
dataset-wide instruction. The completion column becomes ``original_completion``. The context columns are
rendered into one ``_context`` text ("name: value" lines) that the prompt templates use; the image column is
read into ``_images`` (sent to the model as an image, never as text), and ``_image_key`` names it (a hash of
its bytes, or its URL) so that dedup tells rows with the same text but different images apart. Chat mode:
the chat column (a list of ``{"role", "content"}`` messages, or that list as JSON text) becomes
``original_chat`` and ``_chat``, with ``original_prompt``/``original_completion`` set to its last user and
assistant turns, so the per-row steps after completion (reasoning, pairs, safety) work on the final turn.
Every other source column passes through unchanged. Columns whose names start with ``_`` are internal and
never written out.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from datamill.steps.base import BatchStep, Row, RowRejected, StepContext
from datamill.steps.images import load_image

if TYPE_CHECKING:
    from datamill.core.mapping import ColumnMapping

_CHAT_ROLES = frozenset({"system", "user", "assistant"})


class MapColumns(BatchStep):
    """Renames the mapped columns, renders context, reads images and parses chats."""

    name: ClassVar[str] = "column_mapping"
    counted_by_plan = True  # the estimate's sample rows are mapped already (`take_sample`)
    output_columns = (
        "original_prompt",
        "original_completion",
        "original_chat",
        "_context",
        "_images",
        "_image_key",
    )

    def __init__(
        self, mapping: ColumnMapping, *, base_dir: Path | None = None, local_files: bool = True
    ) -> None:
        self.mapping = mapping
        self.base_dir = base_dir
        self.local_files = local_files
        self.input_columns = tuple(
            c for c in (mapping.prompt, mapping.completion, mapping.chat, *mapping.context) if c is not None
        )
        self._renamed = {c for c in (mapping.prompt, mapping.completion, mapping.chat) if c is not None}
        self._text_context = tuple(c for c in mapping.context if c != mapping.image)

    def process_batch(self, rows: list[Row], ctx: StepContext) -> list[Row]:
        kept = []
        for row in rows:
            try:
                kept.append(self.map_row(row))
            except RowRejected as exc:
                ctx.reject(row, self.name, str(exc))
        return kept

    def map_row(self, row: Row) -> Row:
        m = self.mapping
        out: Row = {}
        if m.chat is not None:
            out.update(chat_columns(row.get(m.chat)))
        elif m.universal_prompt is not None:
            out["original_prompt"] = m.universal_prompt
        elif m.prompt is not None:
            out["original_prompt"] = _text(row.get(m.prompt))
        if m.completion is not None:
            out["original_completion"] = _text(row.get(m.completion))
        for key, value in row.items():
            if key not in self._renamed:
                out[key] = value
        out["_context"] = render_context(row, self._text_context)
        if m.image is not None:
            image = load_image(row.get(m.image), self.base_dir, local_files=self.local_files)
            out["_images"] = [image] if image is not None else []
            out["_image_key"] = image.digest() if image is not None else ""
        return out


def chat_columns(value: Any) -> Row:
    """The canonical columns of a chat cell; RowRejected when it is not a list of messages."""
    messages = parse_chat(value)
    last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), None)
    last = messages[-1]
    return {
        "original_chat": messages,
        "original_prompt": last_user,
        "original_completion": last["content"] if last["role"] == "assistant" else None,
        "_chat": messages,
        "_chat_text": "\n".join(f"{m['role']}: {m['content']}" for m in messages),
    }


def parse_chat(value: Any) -> list[dict[str, str]]:
    """Messages in OpenAI format, from a list or from JSON text."""
    if isinstance(value, str | bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise RowRejected(f"chat cell is not JSON: {exc}") from exc
    if not isinstance(value, list) or not value:
        raise RowRejected("chat cell must be a non-empty list of messages")
    messages = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or item.get("role") not in _CHAT_ROLES:
            raise RowRejected(f"chat message {i} needs a role of system, user or assistant")
        content = item.get("content")
        if not isinstance(content, str):
            raise RowRejected(f"chat message {i} needs text content")
        messages.append({"role": str(item["role"]), "content": content})
    if not any(m["role"] == "user" for m in messages):
        raise RowRejected("chat has no user message")
    return messages


def render_context(row: Row, columns: tuple[str, ...]) -> str:
    """The context columns of a row as ``name: value`` lines, skipping empty values."""
    lines = []
    for col in columns:
        value = row.get(col)
        if value is None or value == "":
            continue
        lines.append(f"{col}: {_text(value)}")
    return "\n".join(lines)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
