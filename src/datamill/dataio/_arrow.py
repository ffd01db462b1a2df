"""Arrow helpers for writing: values as JSON, nested columns as JSON text, fixing and conforming schemas.

Writers meet batches whose schemas differ slightly (a column all-null in one batch is typed `null`, string in
the next; an int column that later holds floats; a struct that gains a field). Formats that fix their columns
up front (csv's header, parquet's schema) take them from the first batch and conform later batches to it:
missing columns become null, narrower types are cast up, and anything that would need a wider type or a new
column is a DataFormatError rather than a silent loss.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from typing import Any

import orjson
import pyarrow as pa

from datamill.core.errors import DataFormatError


def json_default(value: Any) -> Any:
    """Encode the values orjson does not know: decimals and durations as strings, bytes as base64."""
    if isinstance(value, decimal.Decimal | dt.timedelta):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def dumps(value: Any, *, newline: bool = False) -> bytes:
    """orjson.dumps with the datamill defaults (keys as given, `json_default` for extra types)."""
    option = orjson.OPT_APPEND_NEWLINE if newline else 0
    return orjson.dumps(value, default=json_default, option=option)


def is_nested(type_: pa.DataType) -> bool:
    """Whether values of `type_` are lists, structs or maps (written to csv as JSON text)."""
    return bool(
        pa.types.is_list(type_)
        or pa.types.is_large_list(type_)
        or pa.types.is_fixed_size_list(type_)
        or pa.types.is_struct(type_)
        or pa.types.is_map(type_)
    )


def widen_nulls(type_: pa.DataType) -> pa.DataType:
    """Replace the `null` type, at any depth, by string: the most likely type of a column seen only empty."""
    if pa.types.is_null(type_):
        return pa.string()
    if pa.types.is_list(type_):
        return pa.list_(type_.value_field.with_type(widen_nulls(type_.value_type)))
    if pa.types.is_large_list(type_):
        return pa.large_list(type_.value_field.with_type(widen_nulls(type_.value_type)))
    if pa.types.is_struct(type_):
        return pa.struct([field.with_type(widen_nulls(field.type)) for field in type_])
    return type_


def text_column(array: pa.Array) -> pa.Array:
    """A column as strings: nested values as JSON text, scalars by Arrow's cast (1.5 -> "1.5")."""
    if pa.types.is_string(array.type):
        return array
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), pa.string())
    if is_nested(array.type):
        texts = [None if value is None else dumps(value).decode() for value in array.to_pylist()]
        return pa.array(texts, pa.string())
    return array.cast(pa.string())


def _fits(path: str, name: str, fixed: pa.DataType, found: pa.DataType, number: int) -> None:
    """Raise unless values of type `found` can be cast to `fixed` without losing anything."""
    try:
        wider = (
            pa.unify_schemas(
                [pa.schema([(name, fixed)]), pa.schema([(name, found)])], promote_options="permissive"
            )
            .field(name)
            .type
        )
    except (pa.ArrowException, TypeError):
        wider = None
    if wider != fixed:
        raise DataFormatError(
            path,
            f"cannot write batch {number}: column {name!r} is {found} there but {fixed} in the first batch, "
            "which fixed the file's schema",
        )


def check_columns(path: str, fixed: list[str], batch: pa.RecordBatch, number: int) -> None:
    """Raise if `batch` has a column that the first batch (which fixed the file's columns) did not."""
    extra = [name for name in batch.schema.names if name not in fixed]
    if extra:
        raise DataFormatError(
            path,
            f"cannot write batch {number}: column(s) {', '.join(map(repr, extra))} were not in the first "
            "batch, which fixed the file's columns",
        )


def conform(path: str, schema: pa.Schema, batch: pa.RecordBatch, number: int) -> pa.RecordBatch:
    """Reorder, null-fill and cast `batch` (the `number`-th written) to the fixed `schema`, or raise."""
    if batch.schema == schema:
        return batch
    check_columns(path, schema.names, batch, number)
    arrays: list[pa.Array] = []
    for field in schema:
        index = batch.schema.get_field_index(field.name)
        if index < 0:
            arrays.append(pa.nulls(batch.num_rows, field.type))
            continue
        column = batch.column(index)
        if column.type != field.type:
            _fits(path, field.name, field.type, column.type, number)
            column = column.cast(field.type)
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
