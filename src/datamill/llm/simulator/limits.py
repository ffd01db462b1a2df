"""Per-minute budgets (requests and tokens) and the rate-limit headers the providers send.

Each budget counts over a sliding window (60 s unless told otherwise). A request is admitted when the window
has room for one more request and for its tokens: its prompt tokens plus its answer cap (OpenAI counts the
cap against the token budget; a request with no cap counts its prompt only). Otherwise it is answered 429
with ``Retry-After`` set to when the window will have room. With ``count_rejected`` a refused request still
counts against the request budget, as OpenAI documents for its limits.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import UTC, datetime, timedelta

from datamill.llm.simulator.formats import API_ANTHROPIC, API_OPENAI


class Budget:
    """The requests and tokens admitted in the current window."""

    def __init__(
        self,
        *,
        tokens_per_minute: int | None = None,
        requests_per_minute: int | None = None,
        window_s: float = 60.0,
        count_rejected: bool = False,
    ) -> None:
        self.tokens_per_minute = tokens_per_minute
        self.requests_per_minute = requests_per_minute
        self.window_s = window_s
        self.count_rejected = count_rejected
        self._admitted: deque[tuple[float, int]] = deque()
        self._tokens = 0

    @property
    def active(self) -> bool:
        return self.tokens_per_minute is not None or self.requests_per_minute is not None

    def admit(self, now: float, tokens: int) -> float | None:
        """None when the request is admitted (and counted), else the seconds until it would be."""
        self._expire(now)
        wait = self._wait(now, tokens)
        if wait is None:
            self._admitted.append((now, tokens))
            self._tokens += tokens
        elif self.count_rejected:
            self._admitted.append((now, 0))
        return wait

    def _expire(self, now: float) -> None:
        while self._admitted and self._admitted[0][0] <= now - self.window_s:
            self._tokens -= self._admitted.popleft()[1]

    def _wait(self, now: float, tokens: int) -> float | None:
        waits = []
        rpm, tpm = self.requests_per_minute, self.tokens_per_minute
        if rpm is not None and len(self._admitted) >= rpm:
            waits.append(self._admitted[len(self._admitted) - rpm][0] + self.window_s - now)
        if tpm is not None and self._tokens + tokens > tpm:
            if tokens > tpm:
                waits.append(self.window_s)
            else:
                freed = 0
                for at, spent in self._admitted:
                    freed += spent
                    if self._tokens - freed + tokens <= tpm:
                        waits.append(at + self.window_s - now)
                        break
        return max(0.001, max(waits)) if waits else None

    def remaining(self, now: float) -> tuple[int | None, int | None]:
        """(requests, tokens) left in the window now; None where there is no budget."""
        self._expire(now)
        requests = (
            None
            if self.requests_per_minute is None
            else max(0, self.requests_per_minute - len(self._admitted))
        )
        tokens = None if self.tokens_per_minute is None else max(0, self.tokens_per_minute - self._tokens)
        return requests, tokens

    def reset_s(self, now: float) -> float:
        """Seconds until the window is empty again."""
        return max(0.0, self._admitted[-1][0] + self.window_s - now) if self._admitted else 0.0

    def headers(self, api: str, now: float, *, limits: tuple[int, int] | None = None) -> dict[str, str]:
        """The provider's rate-limit headers (none for Gemini, which sends none).

        ``limits`` (requests, tokens) stands in for the budget when there is none (a scripted 429).
        """
        requests, tokens = self.remaining(now)
        request_limit, token_limit = self.requests_per_minute, self.tokens_per_minute
        if limits is not None:
            request_limit = request_limit or limits[0]
            token_limit = token_limit or limits[1]
            requests, tokens = 0 if requests is None else requests, 0 if tokens is None else tokens
        reset = self.reset_s(now) if limits is None else max(self.reset_s(now), 1.0)
        out: dict[str, str] = {}
        if api == API_OPENAI:
            for kind, limit, left in (("requests", request_limit, requests), ("tokens", token_limit, tokens)):
                if limit is not None and left is not None:
                    out[f"x-ratelimit-limit-{kind}"] = str(limit)
                    out[f"x-ratelimit-remaining-{kind}"] = str(left)
                    out[f"x-ratelimit-reset-{kind}"] = openai_duration(reset)
        elif api == API_ANTHROPIC:
            when = (datetime.now(UTC) + timedelta(seconds=reset)).strftime("%Y-%m-%dT%H:%M:%SZ")
            kinds = (
                ("requests", request_limit, requests),
                ("tokens", token_limit, tokens),
                ("input-tokens", token_limit, tokens),
            )
            for kind, limit, left in kinds:
                if limit is not None and left is not None:
                    out[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
                    out[f"anthropic-ratelimit-{kind}-remaining"] = str(left)
                    out[f"anthropic-ratelimit-{kind}-reset"] = when
        return out


def openai_duration(seconds: float) -> str:
    """A duration as OpenAI writes it in ``x-ratelimit-reset-*``: ``59ms``, ``1s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    if minutes:
        return f"{int(minutes)}m{rest:.0f}s"
    return f"{rest:.3g}s"
