"""The exception tree every layer shares.

DatamillError
 ├── ValidationError        bad input from a user: names each field and the reason
 ├── DataFormatError        a file that cannot be read: says what is wrong and where
 ├── ConfigError            missing or invalid configuration (routing file, API key variable, ...)
 └── ModelError             a model call that failed for good
      ├── UnknownModelError     a model name that no route matches
      ├── RateLimitedError      429 (carries Retry-After), retried by the gateway
      ├── TransientError        5xx, timeouts, connection errors, retried by the gateway
      │    └── UnreadReplyError     a billed reply that never arrived whole (timeout, reset mid-body)
      ├── PermanentModelError   any other 4xx: never retried
      │    └── ConnectionConfigError  the endpoint cannot be reached as configured (DNS, refused, TLS, 3xx)
      └── OutputValidationError model output that does not match the requested JSON schema
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class DatamillError(Exception):
    """Base class of every error datamill raises on purpose."""


@dataclass(frozen=True)
class Issue:
    """One violated rule: the dotted path of the field and why it is wrong."""

    field: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class ValidationError(DatamillError):
    """Input that breaks one or more rules; each issue names its field."""

    def __init__(self, issues: list[Issue] | Issue) -> None:
        self.issues: list[Issue] = [issues] if isinstance(issues, Issue) else list(issues)
        super().__init__("; ".join(f"{i.field}: {i.reason}" for i in self.issues))

    @classmethod
    def of(cls, field: str, reason: str) -> ValidationError:
        return cls(Issue(field, reason))

    def to_dict(self) -> dict[str, Any]:
        return {"message": str(self), "errors": [i.to_dict() for i in self.issues]}


class DataFormatError(DatamillError):
    """A data file that cannot be read; the message says what is wrong and where."""

    def __init__(self, path: str, reason: str, *, line: int | None = None) -> None:
        self.path = path
        self.reason = reason
        self.line = line
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {reason}")


class ConfigError(DatamillError):
    """Missing or invalid configuration."""


class ModelError(DatamillError):
    """A model call that failed."""


class UnknownModelError(ModelError):
    """A model name that no route in the routing file matches."""

    def __init__(self, name: str, configured: list[str]) -> None:
        self.name = name
        self.configured = configured
        shown = ", ".join(configured[:40]) + (" ..." if len(configured) > 40 else "")
        super().__init__(f"unknown model {name!r}; configured models: {shown}")


class RateLimitedError(ModelError):
    """The provider answered 429; `retry_after` is in seconds when it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class TransientError(ModelError):
    """A failure worth retrying: 5xx, timeout, dropped connection."""


class UnreadReplyError(TransientError):
    """A billed request whose reply never arrived whole.

    The deadline passed after it was sent, or the connection dropped mid-body after a 2xx status; see
    `datamill.llm.billing`.
    """


class PermanentModelError(ModelError):
    """A failure not worth retrying: a 4xx other than 429, a missing key."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ConnectionConfigError(PermanentModelError):
    """A call that cannot reach its endpoint as configured; never retried.

    `kind` names the cause: ``"dns"`` (the host name does not resolve), ``"refused"`` (nothing listens on the
    port), ``"tls"`` (the server's certificate does not verify against the trusted CAs), ``"redirect"`` (a 3xx
    reply: the base URL is not the API's), ``"proxy"`` (the proxy refused the tunnel or cannot be reached).
    One such failure rejects its row; a run decides how many in a row mean the whole run must stop.
    """

    KINDS = ("dns", "refused", "tls", "redirect", "proxy")

    def __init__(self, message: str, kind: str, status: int | None = None) -> None:
        self.kind = kind
        super().__init__(message, status=status)


class OutputValidationError(ModelError):
    """Model output that does not parse or does not match the requested JSON schema."""


#: Statuses of a permanent model error that every row would hit the same way (bad key, no access, no model).
FATAL_MODEL_STATUSES = frozenset({401, 403, 404})


def fails_every_row(exc: BaseException) -> bool:
    """Whether a model-call error means the whole run must stop rather than reject one row."""
    if isinstance(exc, ConfigError | UnknownModelError):
        return True
    return isinstance(exc, PermanentModelError) and exc.status in FATAL_MODEL_STATUSES
