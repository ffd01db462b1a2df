"""The column mapping of a raw ingest (Adaption API).

A raw dataset is trainable as uploaded, so its mapping names the training columns directly: a ``prompt``
column (always), and either a ``completion`` column (instruction data) or a ``chosen`` and a ``rejected``
column (preference pairs), or all three, plus optional ``context`` columns. Names are checked against the file
with `datamill.core.mapping.check_columns`, as for an adaptation mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from datamill.core.fields import Issues, join, parse_with, read_object, read_str, read_str_list
from datamill.core.mapping import check_unique_columns

SOURCE_MAPPING_FIELDS = ("prompt", "completion", "chosen", "rejected", "context")


@dataclass(frozen=True, slots=True)
class SourceColumnMapping:
    """A validated raw-ingest mapping; build one with `parse_source_column_mapping`.

    Attributes:
        prompt: the prompt column.
        completion: the completion column; required unless both chosen and rejected are given.
        chosen: the preferred-answer column of a preference pair.
        rejected: the dispreferred-answer column of a preference pair.
        context: context columns.
    """

    prompt: str
    completion: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    context: tuple[str, ...] = ()

    def columns(self) -> list[tuple[str, str]]:
        """Each (role path, column) pair, in wire order."""
        pairs = [(name, col) for name in SOURCE_MAPPING_FIELDS[:4] if (col := getattr(self, name))]
        return pairs + [(join("context", i), col) for i, col in enumerate(self.context)]

    def to_dict(self) -> dict[str, object]:
        """The wire shape: set keys only, ``context`` as a list when it has entries."""
        out: dict[str, object] = {
            name: col for name in SOURCE_MAPPING_FIELDS[:4] if (col := getattr(self, name)) is not None
        }
        if self.context:
            out["context"] = list(self.context)
        return out


def parse_source_column_mapping(value: object, field: str = "column_mapping") -> SourceColumnMapping:
    """Validate a wire-shaped raw-ingest mapping, or raise a `ValidationError` with every issue."""
    return parse_with(read_source_column_mapping, value, field)


def read_source_column_mapping(value: object, field: str, issues: Issues) -> SourceColumnMapping | None:
    """Reader form of `parse_source_column_mapping` (see `core.fields`)."""
    before = len(issues)
    obj = read_object(value, field, SOURCE_MAPPING_FIELDS, issues)
    if obj is None:
        return None
    cols = {name: read_str(obj.get(name), join(field, name), issues) for name in SOURCE_MAPPING_FIELDS[:4]}
    context = read_str_list(obj.get("context"), join(field, "context"), issues) or ()
    given = {name for name in SOURCE_MAPPING_FIELDS if obj.get(name) is not None}
    _check_roles(given, field, issues)
    prompt = cols.pop("prompt")
    if len(issues) > before or prompt is None:
        return None
    mapping = SourceColumnMapping(prompt=prompt, context=context, **cols)
    check_unique_columns(mapping, field, issues)
    return None if len(issues) > before else mapping


def _check_roles(given: set[str], field: str, issues: Issues) -> None:
    if "prompt" not in given:
        issues.add(join(field, "prompt"), "prompt is required: name the prompt column")
    for one, other in (("chosen", "rejected"), ("rejected", "chosen")):
        if one in given and other not in given:
            issues.add(
                join(field, other), f"{other} is required when {one} is given: a preference pair needs both"
            )
    if "completion" not in given and not {"chosen", "rejected"} & given:
        issues.add(
            join(field, "completion"), "completion is required unless both chosen and rejected are given"
        )
