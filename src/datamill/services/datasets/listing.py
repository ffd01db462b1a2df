"""Listing datasets: the query a caller may send, checked, and the opaque cursor of keyset pagination.

The query follows the Adaption API (Adaption API): ``limit`` (default 20, capped at 100, sent as ``2.0`` by
some clients, so read as a number), ``status``, ``q``, ``created_after``/``created_before`` (ISO-8601),
``type``, ``sort`` (``created_at`` | ``updated_at`` | ``name``) and ``sort_direction`` (``desc`` by default).

A cursor is base64url JSON holding the sort, the direction, and the sort value and id of the last item of the
page. The next page starts strictly after that (value, id) pair, so rows inserted or updated meanwhile never
make a page repeat or skip an item that still matches. A cursor must come with the sort and direction it was
made for; anything else is a 400 naming ``cursor``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from datamill.core.errors import ValidationError
from datamill.core.fields import Issues
from datamill.store.datasets import SortKey

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
STATUSES = ("pending", "running", "awaiting_input", "succeeded", "failed")
# The legacy offset list's status words (Adaption API), mapped to the cursor list's.
_LEGACY_STATUSES = {"complete": "succeeded", "in_progress": "running", "inprogress": "running"}
KINDS = ("uploaded", "combined", "invented", "augmented", "translated", "localized", "extended")
# `type` values of the wire list; each kind name is accepted too.
TYPES: dict[str, tuple[str, ...]] = {"original": ("uploaded",), **{kind: (kind,) for kind in KINDS}}
SORTS: tuple[SortKey, ...] = ("created_at", "updated_at", "name")


@dataclass(frozen=True)
class ListQuery:
    """A checked listing request."""

    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    statuses: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    text: str | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    sort: SortKey = "created_at"
    descending: bool = True


def _limit(text: str | None, issues: Issues) -> int:
    if text is None:
        return DEFAULT_LIMIT
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number != int(number) or number < 1:
        issues.add("limit", f"must be a whole number from 1 to {MAX_LIMIT}, got {text!r}")
        return DEFAULT_LIMIT
    return min(int(number), MAX_LIMIT)


def parse_datetime(text: str, field: str, issues: Issues) -> dt.datetime | None:
    """An ISO-8601 datetime or date; naive values are UTC. Records an issue and returns None if unreadable."""
    value = text.strip()
    if " " in value and "T" in value:  # a '+' of a UTC offset that arrived unencoded reads as a space
        head, _, tail = value.rpartition(" ")
        value = f"{head}+{tail}"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        issues.add(field, f"must be an ISO-8601 datetime such as 2025-06-01T12:00:00Z, got {text!r}")
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def _choice(text: str | None, field: str, allowed: tuple[str, ...], issues: Issues) -> str | None:
    if text is None:
        return None
    value = text.strip().lower()
    if value not in allowed:
        issues.add(field, f"must be one of {', '.join(allowed)}, got {text!r}")
        return None
    return value


def parse_list_query(params: Mapping[str, str | None]) -> ListQuery:
    """Check listing parameters (empty strings count as absent); a ValidationError names each bad one."""
    raw = {key: value for key, value in params.items() if value not in (None, "")}
    issues = Issues()
    status = _choice(raw.get("status"), "status", STATUSES + tuple(_LEGACY_STATUSES), issues)
    kind = _choice(raw.get("type"), "type", tuple(TYPES), issues)
    sort = _choice(raw.get("sort"), "sort", SORTS, issues) or "created_at"
    direction = _choice(raw.get("sort_direction"), "sort_direction", ("asc", "desc"), issues) or "desc"
    after, before = raw.get("created_after"), raw.get("created_before")
    query = ListQuery(
        limit=_limit(raw.get("limit"), issues),
        cursor=raw.get("cursor"),
        statuses=(_LEGACY_STATUSES.get(status, status),) if status else (),
        kinds=TYPES[kind] if kind else (),
        text=raw.get("q"),
        created_after=parse_datetime(after, "created_after", issues) if after else None,
        created_before=parse_datetime(before, "created_before", issues) if before else None,
        sort=cast(SortKey, sort),
        descending=direction == "desc",
    )
    issues.raise_if_any()
    return query


def encode_cursor(query: ListQuery, value: Any, ident: str) -> str:
    """The cursor of the page after the item whose sort value is `value` and id is `ident`."""
    shown = value.isoformat() if isinstance(value, dt.datetime) else value
    payload = {"s": query.sort, "d": "desc" if query.descending else "asc", "v": shown, "i": ident}
    data = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def decode_cursor(query: ListQuery) -> tuple[Any, str] | None:
    """The (sort value, id) the query's cursor points after, or None without a cursor.

    Raises:
        ValidationError: The cursor is not one this server made, or was made for another sort or direction.
    """
    if query.cursor is None:
        return None
    bad = ValidationError.of("cursor", "invalid cursor: pass back the next_cursor of the previous page")
    try:
        text = query.cursor + "=" * (-len(query.cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise bad from None
    if not isinstance(payload, dict) or set(payload) != {"s", "d", "v", "i"}:
        raise bad
    if payload["s"] != query.sort or payload["d"] != ("desc" if query.descending else "asc"):
        raise ValidationError.of("cursor", "the cursor was made for another sort or sort_direction")
    if not isinstance(payload["i"], str) or not isinstance(payload["v"], str):
        raise bad
    if query.sort == "name":
        return payload["v"], payload["i"]
    try:
        return dt.datetime.fromisoformat(payload["v"]), payload["i"]
    except ValueError:
        raise bad from None
