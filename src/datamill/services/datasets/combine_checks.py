"""Whether datasets can be combined: the issues of a proposed merge, and the plan of a compatible one.

`check_sources` looks at the sources (their status, row counts, column mappings, image columns) and
`check_columns` at their column schemas. Each finding is a `CombineIssue` with a stable ``code`` (the SDK's
codes where one fits) and a ``level``: an ``error`` blocks the merge, a ``warning`` describes what the merge
reconciles by itself.

| code                                  | level   | when                                                   |
|---------------------------------------|---------|--------------------------------------------------------|
| too_few_sources / too_many_sources    | error   | fewer than 2 or more than `MAX_SOURCES` distinct ids   |
| duplicate_source_ids                  | error   | an id listed twice                                     |
| dataset_not_found                     | error   | no such dataset for this tenant                        |
| dataset_not_ready                     | error   | not read yet (pending), or failed                      |
| incompatible_column_types             | error   | a column whose types cannot be merged (list vs text)   |
| incompatible_column_types             | warning | types that can: numbers widened, or cast to text       |
| no_common_columns                     | error   | no column is in every source                           |
| missing_columns                       | warning | columns only some sources have (null in the others)    |
| mixed_multimodal_sources              | warning | some sources have image columns, others do not         |
| mixed_training_types_resolved_to_sft  | warning | preference pairs combined with instruction data        |
| mixed_column_mappings                 | warning | raw sources mapped differently: the result needs adapt |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from datamill.services.datasets.catalog import DatasetView

MIN_SOURCES = 2
MAX_SOURCES = 50
#: Statuses whose dataset has no rows to combine (not read yet, or unreadable).
NOT_READY = ("pending", "failed")
INSTRUCTION, PREFERENCE = "instruction_dataset", "preference_pairs"


@dataclass(frozen=True)
class CombineIssue:
    """One finding about a proposed merge; `extra` holds the code's details (``dataset_id``, ``columns``)."""

    code: str
    level: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        return self.level == "error"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "level": self.level, "message": self.message, **self.extra}


def error(code: str, message: str, **extra: Any) -> CombineIssue:
    return CombineIssue(code, "error", message, extra)


def warning(code: str, message: str, **extra: Any) -> CombineIssue:
    return CombineIssue(code, "warning", message, extra)


def check_ids(dataset_ids: Sequence[str]) -> tuple[list[str], list[CombineIssue]]:
    """The distinct ids in order, and the issues of the id list itself."""
    distinct = list(dict.fromkeys(dataset_ids))
    issues = []
    repeated = sorted({i for i in dataset_ids if dataset_ids.count(i) > 1})
    if repeated:
        issues.append(
            error(
                "duplicate_source_ids", f"listed more than once: {', '.join(repeated)}", dataset_ids=repeated
            )
        )
    if len(distinct) < MIN_SOURCES:
        issues.append(
            error(
                "too_few_sources",
                f"combine needs at least {MIN_SOURCES} different datasets, got {len(distinct)}",
                count=len(distinct),
                limit=MIN_SOURCES,
            )
        )
    if len(distinct) > MAX_SOURCES:
        issues.append(
            error(
                "too_many_sources",
                f"combine takes at most {MAX_SOURCES} datasets, got {len(distinct)}",
                count=len(distinct),
                limit=MAX_SOURCES,
            )
        )
    return distinct, issues


def not_ready(view: DatasetView) -> CombineIssue | None:
    """A `dataset_not_ready` error when the dataset has no rows to combine yet."""
    if view.status not in NOT_READY and view.row_count is not None:
        return None
    reason = "failed" if view.status == "failed" else "has not been read yet"
    return error(
        "dataset_not_ready",
        f"dataset {view.id} {reason} (status {view.status}); only datasets that were read can be combined",
        dataset_id=view.id,
        status=view.status,
    )


def training_type(view: DatasetView) -> str:
    """Preference pairs when the dataset is mapped to chosen and rejected columns, else instruction data."""
    mapping = view.configured_column_mapping or {}
    return PREFERENCE if mapping.get("chosen") and mapping.get("rejected") else INSTRUCTION


def check_sources(views: Sequence[DatasetView]) -> tuple[str, list[CombineIssue]]:
    """The combined training type, and warnings about modalities, training types and raw mappings."""
    issues = []
    with_images = [v.id for v in views if v.image_column_formats]
    if with_images and len(with_images) < len(views):
        issues.append(
            warning(
                "mixed_multimodal_sources",
                "some sources have image columns and others do not; their rows get no image",
                multimodal_dataset_ids=with_images,
                text_dataset_ids=[v.id for v in views if not v.image_column_formats],
            )
        )
    kinds = {v.id: training_type(v) for v in views}
    resolved = kinds[views[0].id] if len(set(kinds.values())) == 1 else INSTRUCTION
    if len(set(kinds.values())) > 1:
        issues.append(
            warning(
                "mixed_training_types_resolved_to_sft",
                "preference pairs combined with instruction data give an instruction dataset",
                types=[{"dataset_id": k, "training_type": t} for k, t in kinds.items()],
            )
        )
    raw = [v for v in views if v.processing_mode == "raw"]
    mappings = {repr(sorted((v.configured_column_mapping or {}).items())) for v in raw}
    if raw and (len(raw) < len(views) or len(mappings) > 1):
        issues.append(
            warning(
                "mixed_column_mappings",
                "the sources are not all raw datasets with one column mapping, so the combined dataset waits "
                "for datasets.adapt(column_mapping=...)",
                dataset_ids=[v.id for v in views],
            )
        )
    return resolved, issues


def combined_mapping(views: Sequence[DatasetView]) -> dict[str, Any] | None:
    """The raw column mapping every source shares, or None (the combined dataset then needs adapt)."""
    first = views[0].configured_column_mapping
    same = all(v.processing_mode == "raw" and v.configured_column_mapping == first for v in views)
    return first if same and first else None


def check_columns(schemas: dict[str, pa.Schema]) -> tuple[pa.Schema | None, list[CombineIssue]]:
    """The schema of the combined rows (None when the columns cannot be merged), and the column issues.

    Columns keep the order in which the sources first name them. Where sources disagree on a column's type,
    numbers are widened (int64 and double give double) and other scalars fall back to text; lists, structs
    and binary values that disagree cannot be merged.
    """
    order = list(dict.fromkeys(name for schema in schemas.values() for name in schema.names))
    fields: list[pa.Field] = []
    merged: list[dict[str, Any]] = []
    broken: list[dict[str, Any]] = []
    for name in order:
        types = {ds: schema.field(name).type for ds, schema in schemas.items() if name in schema.names}
        target = _merge_types(list(types.values()))
        fields.append(pa.field(name, target if target is not None else pa.null()))
        if len({str(t) for t in types.values()}) > 1:
            entry = {
                "column": name,
                "types": [{"dataset_id": ds, "type": str(t)} for ds, t in types.items()],
                "cast_to": str(target) if target is not None else None,
            }
            (merged if target is not None else broken).append(entry)
    issues = _column_issues(schemas, order, merged, broken)
    return (None if any(i.blocking for i in issues) else pa.schema(fields)), issues


def _column_issues(
    schemas: dict[str, pa.Schema], order: list[str], merged: list[Any], broken: list[Any]
) -> list[CombineIssue]:
    issues = []
    if broken:
        names = ", ".join(c["column"] for c in broken)
        issues.append(
            error("incompatible_column_types", f"column types cannot be merged: {names}", columns=broken)
        )
    if merged:
        names = ", ".join(f"{c['column']} → {c['cast_to']}" for c in merged)
        issues.append(
            warning("incompatible_column_types", f"column types are reconciled: {names}", columns=merged)
        )
    shared = [n for n in order if all(n in s.names for s in schemas.values())]
    partial = [n for n in order if n not in shared]
    if not shared:
        issues.append(error("no_common_columns", "the sources have no column in common"))
    elif partial:
        lacking = sorted(ds for ds, s in schemas.items() if any(n not in s.names for n in partial))
        issues.append(
            warning(
                "missing_columns",
                f"columns only some sources have, left empty in the others: {', '.join(partial)}",
                column_names=partial,
                dataset_ids=lacking,
            )
        )
    return issues


def _merge_types(types: list[pa.DataType]) -> pa.DataType | None:
    """One type for a column's types, or None when they cannot be merged."""
    schemas = [pa.schema([pa.field("c", t)]) for t in types]
    try:
        return pa.unify_schemas(schemas, promote_options="permissive").field("c").type
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    if all(_is_scalar(t) for t in types):
        return pa.string()
    return None


def _is_scalar(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
        or pa.types.is_temporal(kind)
        or pa.types.is_decimal(kind)
    )
