"""The ``job_specification`` of a run: how many rows to process and the idempotency key of the launch.

``max_rows`` caps the rows a run processes (a sample is drawn when the dataset has more). An
``idempotency_key`` makes a launch safe to repeat: the same key returns the original launch response.
"""

from __future__ import annotations

from dataclasses import dataclass

from datamill.core.fields import Issues, join, parse_with, read_int, read_object, read_str

#: The longest idempotency key accepted, in characters.
MAX_IDEMPOTENCY_KEY_CHARS = 255

JOB_FIELDS = ("max_rows", "idempotency_key")


@dataclass(frozen=True, slots=True)
class JobSpecification:
    """The validated ``job_specification``.

    Attributes:
        max_rows: the most rows to process (at least 1), or None for all of them.
        idempotency_key: a non-empty key of at most 255 characters, or None.
    """

    max_rows: int | None = None
    idempotency_key: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The wire shape, set keys only."""
        out: dict[str, object] = {}
        if self.max_rows is not None:
            out["max_rows"] = self.max_rows
        if self.idempotency_key is not None:
            out["idempotency_key"] = self.idempotency_key
        return out


def parse_job_specification(value: object, field: str = "job_specification") -> JobSpecification:
    """Validate a wire-shaped job specification, or raise a `ValidationError` with every issue."""
    return parse_with(read_job_specification, value, field)


def read_job_specification(value: object, field: str, issues: Issues) -> JobSpecification | None:
    """Reader form of `parse_job_specification` (see `core.fields`); null means no limits and no key."""
    if value is None:
        return JobSpecification()
    before = len(issues)
    obj = read_object(value, field, JOB_FIELDS, issues)
    if obj is None:
        return None
    max_rows = read_int(obj.get("max_rows"), join(field, "max_rows"), issues, minimum=1)
    key = read_idempotency_key(obj.get("idempotency_key"), join(field, "idempotency_key"), issues)
    return None if len(issues) > before else JobSpecification(max_rows, key)


def read_idempotency_key(value: object, field: str, issues: Issues) -> str | None:
    """An idempotency key: a non-empty string of at most `MAX_IDEMPOTENCY_KEY_CHARS` characters."""
    return read_str(value, field, issues, max_length=MAX_IDEMPOTENCY_KEY_CHARS)
