"""What providers say about their rate limits: the headers of every reply and the body of a 429.

- OpenAI (and compatible servers that copy it): ``x-ratelimit-limit-requests``, ``-remaining-requests``,
  ``-reset-requests`` and the same for ``tokens``; resets are durations such as ``1s``, ``6m0s`` or ``20ms``.
- Anthropic: ``anthropic-ratelimit-requests-limit|remaining|reset`` and the same for ``tokens`` (the most
  restrictive token limit in effect), else for ``input-tokens``; resets are RFC 3339 times.
- ``Retry-After`` (seconds or an HTTP date) and ``retry-after-ms``.
- Gemini sends no rate-limit headers: its 429 body carries a ``google.rpc.RetryInfo`` detail whose
  ``retryDelay`` (``"20s"``) says when to retry.

A malformed value is ignored (the reading is just missing): a header must never fail a call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from datamill.core.errors import RateLimitedError
from datamill.llm.types import BudgetReading, RateLimits

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


class ProviderRateLimitedError(RateLimitedError):
    """A 429 together with the provider's budgets as its headers gave them (`limits`, None when absent)."""

    def __init__(self, message: str, retry_after: float | None, limits: RateLimits | None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.limits = limits


def read_rate_limits(headers: Mapping[str, str]) -> RateLimits | None:
    """The budgets a reply's headers (lower-case names) report, or None when it has no rate-limit headers."""
    if "x-ratelimit-remaining-requests" in headers or "x-ratelimit-remaining-tokens" in headers:
        return _reading_or_none(
            _openai(headers, "requests"),
            _openai(headers, "tokens"),
        )
    if (
        "anthropic-ratelimit-requests-remaining" in headers
        or "anthropic-ratelimit-tokens-remaining" in headers
    ):
        tokens = _anthropic(headers, "tokens") or _anthropic(headers, "input-tokens")
        return _reading_or_none(_anthropic(headers, "requests"), tokens)
    return None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Read ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def retry_info_seconds(body: bytes) -> float | None:
    """The ``retryDelay`` of a ``google.rpc.RetryInfo`` detail in an error body (Gemini's 429), if any."""
    if b"RetryInfo" not in body:
        return None
    try:
        details = orjson.loads(body)["error"]["details"]
        for detail in details:
            if detail.get("@type") == _RETRY_INFO:
                return _proto_duration(detail.get("retryDelay"))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
    return None


def duration_seconds(text: str) -> float | None:
    """A Go-style duration (``1s``, ``6m0s``, ``1h2m3.5s``, ``20ms``) or plain seconds, in seconds."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    total, end = 0.0, 0
    for match in _DURATION.finditer(text):
        if match.start() != end:
            return None
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        end = match.end()
    return total if end and end == len(text) else None


def _openai(headers: Mapping[str, str], kind: str) -> BudgetReading | None:
    remaining = _number(headers.get(f"x-ratelimit-remaining-{kind}"))
    if remaining is None:
        return None
    reset = headers.get(f"x-ratelimit-reset-{kind}")
    return BudgetReading(
        remaining,
        _number(headers.get(f"x-ratelimit-limit-{kind}")),
        duration_seconds(reset) if reset is not None else None,
    )


def _anthropic(headers: Mapping[str, str], kind: str) -> BudgetReading | None:
    remaining = _number(headers.get(f"anthropic-ratelimit-{kind}-remaining"))
    if remaining is None:
        return None
    reset = headers.get(f"anthropic-ratelimit-{kind}-reset")
    return BudgetReading(
        remaining, _number(headers.get(f"anthropic-ratelimit-{kind}-limit")), _seconds_until(reset)
    )


def _reading_or_none(requests: BudgetReading | None, tokens: BudgetReading | None) -> RateLimits | None:
    if requests is None and tokens is None:
        return None
    return RateLimits(requests, tokens)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 and value == value else None  # no negatives, no NaN


def _seconds_until(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _proto_duration(value: Any) -> float | None:
    """A protobuf ``Duration`` in JSON: ``"20s"`` / ``"1.5s"``, or ``{"seconds": 20, "nanos": 0}``."""
    if isinstance(value, str) and value.endswith("s"):
        try:
            return max(0.0, float(value[:-1]))
        except ValueError:
            return None
    if isinstance(value, dict):
        try:
            return max(0.0, float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9)
        except (TypeError, ValueError):
            return None
    return None
