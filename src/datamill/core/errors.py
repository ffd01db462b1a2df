"""The exception tree every layer shares.

DatamillError
 ├── ValidationError        bad input from a user: names each field and the reason
 ├── DataFormatError        a file that cannot be read: says what is wrong and where
 ├── ConfigError            missing or invalid configuration (routing file, API key variable, ...)
 ├── RunFailedError         a run with nothing to deliver: every row was rejected
 └── ModelError             a model call that failed for good
      ├── UnknownModelError     a model name that no route matches
      ├── RateLimitedError      429 (carries Retry-After), retried by the gateway
      ├── TransientError        5xx, timeouts, connection errors, retried by the gateway
      │    └── UnreadReplyError     a billed reply that never arrived whole (timeout, reset mid-body)
      ├── PermanentModelError   any other 4xx: never retried
      │    ├── ConnectionConfigError  the endpoint cannot be reached as configured (DNS, refused, TLS, 3xx)
      │    └── QuotaExhaustedError    the account cannot pay for calls (no quota, credit balance too low)
      ├── RouteFailingError     every call of a route fails the same way: the run must stop
      ├── OutputValidationError model output that does not match the requested JSON schema
      └── UnusableReplyError    a reply that is not an answer, retried once, then the row is rejected
           ├── RefusalError          the model refused
           ├── TruncatedReplyError   the reply was cut off at the token limit
           ├── EmptyReplyError       no answer text (nothing, or only reasoning)
           └── ContentFilteredError  the provider's content filter withheld the answer
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
    reply: the base URL is not the API's), ``"proxy"`` (the proxy refused the tunnel or cannot be reached),
    ``"policy"`` (the endpoint resolves to an address the outbound-URL policy refuses).
    One such failure rejects its row; a run decides how many in a row mean the whole run must stop.
    """

    KINDS = ("dns", "refused", "tls", "redirect", "proxy", "policy")

    def __init__(self, message: str, kind: str, status: int | None = None) -> None:
        self.kind = kind
        super().__init__(message, status=status)


class QuotaExhaustedError(PermanentModelError):
    """The provider refuses calls until the account is paid for: no quota left, credit balance too low."""


class RouteFailingError(ModelError):
    """A route whose calls all fail the same way (unreachable endpoint, a 400 on every request).

    Raised by the gateway once a route has failed `consecutive` times in a row with no successful reply in
    between; every later call of the route raises it at once. It fails every row, so a run stops.
    """

    def __init__(self, route: str, consecutive: int, cause: BaseException) -> None:
        self.route = route
        self.consecutive = consecutive
        self.cause = cause
        calls = "1 failed call" if consecutive == 1 else f"{consecutive} failed calls in a row"
        super().__init__(f"stopped calling {route!r} after {calls} with none succeeding; last error: {cause}")


class OutputValidationError(ModelError):
    """Model output that does not parse or does not match the requested JSON schema."""


class UnusableReplyError(ModelError):
    """A reply that is not an answer to keep: a refusal, a cut, an empty or filtered reply.

    `reason` is the short name a rejected row's reason carries (``refusal``, ``truncated``, ``empty``,
    ``content_filter``); `retryable` is False where the same request would get the same reply (a prompt
    blocked by the provider's filter).
    """

    reason = "unusable"

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        self.retryable = retryable
        super().__init__(message)


class RefusalError(UnusableReplyError):
    """The model declined to answer (a refusal field, a refusal stop reason, or a refusal sentence)."""

    reason = "refusal"


class TruncatedReplyError(UnusableReplyError):
    """The reply stopped at the token limit (``finish_reason: length``, ``max_tokens``, ``MAX_TOKENS``)."""

    reason = "truncated"


class EmptyReplyError(UnusableReplyError):
    """The reply holds no answer text: nothing at all, or only the model's reasoning."""

    reason = "empty"


class ContentFilteredError(UnusableReplyError):
    """The provider's content filter withheld the answer (``content_filter``, Gemini ``SAFETY``)."""

    reason = "content_filter"


class RunFailedError(DatamillError):
    """A run that finished with nothing to deliver: every row was rejected (the message says why)."""


#: Statuses of a permanent model error that every row would hit the same way (bad key, no access, no model).
FATAL_MODEL_STATUSES = frozenset({401, 402, 403, 404})


def fails_every_row(exc: BaseException) -> bool:
    """Whether a model-call error means the whole run must stop rather than reject one row."""
    if isinstance(exc, ConfigError | UnknownModelError | RouteFailingError | QuotaExhaustedError):
        return True
    return isinstance(exc, PermanentModelError) and exc.status in FATAL_MODEL_STATUSES
