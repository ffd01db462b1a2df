"""Reading wire-shaped (JSON-like) values field by field while collecting every issue.

Every parse function in `core` works the same way: it creates an `Issues`, reads each field through the
helpers here (each checks the JSON type, records an `Issue` with the dotted field path when the value is
wrong, and returns None so reading can go on), and raises one `ValidationError` with all the issues at the
end. So a user sees every problem in a request at once, with the same wording whichever entry point
(CLI, Python API, a wire API) they came through.

Conventions shared by the readers:

- A value of None means "absent or JSON null"; the caller decides whether that is allowed.
- Booleans are never numbers (``True`` is an ``int`` in Python, but not on the wire), and numbers are never
  booleans.
- An integer field accepts a float with no fractional part (``10.0``), because the SDKs send ``number``
  fields as the caller typed them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from enum import StrEnum
from typing import TypeVar

from datamill.core.errors import Issue, ValidationError

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

#: A reader takes the raw value and its field path, records issues, and returns the typed value or None.
Reader = Callable[[object, str, "Issues"], T | None]


class Issues:
    """An ordered list of issues that becomes one `ValidationError`."""

    def __init__(self) -> None:
        self._items: list[Issue] = []

    def add(self, field: str, reason: str) -> None:
        self._items.append(Issue(field, reason))

    def extend(self, issues: Iterable[Issue]) -> None:
        self._items.extend(issues)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Issue]:
        return iter(self._items)

    def raise_if_any(self) -> None:
        """Raise a `ValidationError` carrying every recorded issue, if there is one."""
        if self._items:
            raise ValidationError(list(self._items))


def parse_with(reader: Reader[T], value: object, field: str) -> T:
    """Run a reader on its own and raise a `ValidationError` with all its issues, or return the value."""
    issues = Issues()
    result = reader(value, field, issues)
    issues.raise_if_any()
    if result is None:  # a reader returns None only after recording an issue; this guards a broken reader
        raise ValidationError.of(field or "body", "could not be read")
    return result


def join(parent: str, key: str | int) -> str:
    """Dotted path of a child field: ``join("a", "b") == "a.b"``, ``join("a", 1) == "a[1]"``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def describe(value: object) -> str:
    """The JSON type of a value, for messages such as "must be a boolean, got a string"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def listing(names: Iterable[str], limit: int = 40) -> str:
    """Join names for a message, cutting long lists short with a count of the rest."""
    items = list(names)
    shown = ", ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def read_object(
    value: object, field: str, allowed: Collection[str], issues: Issues
) -> Mapping[str, object] | None:
    """Check that a value is a JSON object whose keys are all in `allowed`.

    Unknown keys are reported one by one (each naming the allowed ones) but do not stop the reading:
    the returned mapping still holds them, so callers should read only the keys they know.
    """
    if not isinstance(value, Mapping):
        issues.add(field or "body", f"must be a JSON object, got {describe(value)}")
        return None
    for key in value:
        if key not in allowed:
            issues.add(
                join(field, str(key)), f"unknown field {key!r}; allowed fields: {listing(sorted(allowed))}"
            )
    return value


def read_str(value: object, field: str, issues: Issues, *, max_length: int | None = None) -> str | None:
    """A non-empty string, at most `max_length` characters when given."""
    if value is None:
        return None
    if not isinstance(value, str):
        issues.add(field, f"must be a string, got {describe(value)}")
        return None
    if not value.strip():
        issues.add(field, "must not be empty or blank")
        return None
    if max_length is not None and len(value) > max_length:
        issues.add(field, f"is {len(value)} characters long; the maximum is {max_length}")
        return None
    return value


def read_bool(value: object, field: str, issues: Issues) -> bool | None:
    """A JSON boolean; strings such as "true" are refused so that typos cannot flip a switch."""
    if value is None or isinstance(value, bool):
        return value
    issues.add(field, f"must be a boolean (true or false), got {describe(value)}")
    return None


def read_number(
    value: object,
    field: str,
    issues: Issues,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float | None:
    """A finite number (int or float, never a boolean) within the inclusive bounds given."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        issues.add(field, f"must be a number, got {describe(value)}")
        return None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        issues.add(field, f"must be {_bounds(minimum, maximum)}, got {value!r}")
        return None
    return float(value)


#: The largest whole number a request may hold: a database's 64-bit integer.
MAX_INT = 2**63 - 1


def read_int(
    value: object, field: str, issues: Issues, *, minimum: int | None = None, maximum: int = MAX_INT
) -> int | None:
    """A whole number (``10`` or ``10.0``, never ``10.5`` or a boolean), within `minimum` and `maximum`.

    The default maximum refuses here, not in the store, a number no database column could hold.
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        issues.add(field, f"must be a whole number, got {describe(value)}")
        return None
    if minimum is not None and number < minimum:
        issues.add(field, f"must be at least {minimum}, got {number}")
        return None
    if number > maximum:
        issues.add(field, f"must be at most {maximum}, got {_short(number)}")
        return None
    return number


def _short(number: int) -> str:
    digits = str(number)
    return digits if len(digits) <= 24 else f"a number of {len(digits)} digits"


def read_enum(value: object, field: str, issues: Issues, enum: type[E]) -> E | None:
    """One of the string values of a `StrEnum`, matched exactly (the wire values are lower case)."""
    if value is None:
        return None
    allowed = [member.value for member in enum]
    if isinstance(value, str) and value in allowed:
        return enum(value)
    got = repr(value) if isinstance(value, str) else describe(value)
    issues.add(field, f"must be one of {', '.join(allowed)}; got {got}")
    return None


def read_list(value: object, field: str, issues: Issues) -> list[object] | None:
    """A JSON array (a list or tuple); its items are for the caller to read."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return list(value)
    issues.add(field, f"must be an array, got {describe(value)}")
    return None


def read_str_list(value: object, field: str, issues: Issues) -> tuple[str, ...] | None:
    """An array of non-empty strings; each bad item is reported at ``field[i]``."""
    items = read_list(value, field, issues)
    if items is None:
        return None
    result: list[str] = []
    for i, item in enumerate(items):
        if item is None:  # read_str treats None as "absent", but an array item cannot be absent
            issues.add(join(field, i), "must be a string, got null")
            continue
        text = read_str(item, join(field, i), issues)
        if text is not None:
            result.append(text)
    return tuple(result) if len(result) == len(items) else None


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"between {minimum:g} and {maximum:g}"
    return f"at least {minimum:g}" if minimum is not None else f"at most {maximum:g}"
