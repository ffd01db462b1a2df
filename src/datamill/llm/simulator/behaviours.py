"""The simulator's switchable behaviours: what each one does, and which one a request gets.

Each behaviour has a rate (0–1). A request gets at most one behaviour, drawn from a random number that is
seeded by the simulator's seed, a digest of the request (path and body) and how many times that same request
was received before. So a run's behaviours do not depend on the order in which concurrent requests arrive, a
retried request draws again, and a rate of 1 applies the behaviour to every request, retries included. The
rates of all behaviours together may not exceed 1.

A behaviour may carry a predicate (``when``) on the parsed request: it then applies only to the requests the
predicate accepts (e.g. only the requests whose prompt holds some text). Behaviours that cannot occur for a
request (a Markdown fence around a forced tool call's arguments) leave it answered normally; the log then
records no behaviour for it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datamill.llm.simulator.formats import WireRequest

#: What each behaviour does, per wire format. The keys are the names rates are given by.
BEHAVIOURS: dict[str, str] = {
    # Replies whose content is not the answer.
    "refusal_text": 'a 200 whose text is a refusal: "I can\'t help with that."',
    "refusal_field": (
        "a native refusal: OpenAI `message.refusal` with null content; Anthropic `stop_reason: refusal` with "
        "no content; Gemini (no refusal field) a refusal text"
    ),
    "truncation": (
        "the answer cut in half: `finish_reason: length`, `stop_reason: max_tokens`, "
        "`finishReason: MAX_TOKENS` (a forced Anthropic tool call gets empty arguments)"
    ),
    "think": "`<think>…</think>` reasoning text before the answer, in the content (vLLM serving R1/Qwen3)",
    "reasoning_field": (
        "reasoning in its native place beside the answer: OpenAI `reasoning_content`, an Anthropic thinking "
        "block, a Gemini `thought: true` part (the answer itself is clean)"
    ),
    "json_fence": "a JSON answer inside a ```json Markdown fence",
    "prose_json": "a JSON answer with prose before and after it",
    "empty": "a 200 with empty content (Anthropic: no content blocks)",
    "content_filter": (
        "filtered: OpenAI `finish_reason: content_filter` with null content; Anthropic "
        "`stop_reason: refusal` with no content; Gemini `finishReason: SAFETY` with no content parts"
    ),
    # HTTP-level failures.
    "overloaded": "Anthropic 529 `overloaded_error`; OpenAI and Gemini 503 overloaded",
    "rate_limit": (
        "429 with `Retry-After` and the provider's rate-limit headers (`x-ratelimit-*`, "
        "`anthropic-ratelimit-*`); Gemini 429 `RESOURCE_EXHAUSTED` with `RetryInfo` in the body"
    ),
    "insufficient_quota": (
        "a quota that will not clear: OpenAI 429 `insufficient_quota`; Anthropic 400 credit balance too low; "
        "Gemini 429 quota exceeded without `RetryInfo`"
    ),
    "bad_request": "400 invalid request (an unsupported parameter), in the provider's error shape",
    "server_error": "500 internal error, in the provider's error shape",
    "reset": "headers and half the body of a normal answer, then a TCP reset (the answer is billed)",
    "slow_first_byte": "a normal answer sent after a delay of `slow_first_byte_s` seconds",
}

#: Behaviours that answer with an HTTP error instead of a reply.
ERROR_BEHAVIOURS = frozenset(
    {"overloaded", "rate_limit", "insufficient_quota", "bad_request", "server_error"}
)

Predicate = Callable[["WireRequest"], bool]


@dataclass(frozen=True, slots=True)
class Setting:
    """One behaviour's rate and, optionally, the requests it is limited to."""

    rate: float
    when: Predicate | None = None


class Behaviours:
    """The rates in force, and the draw that picks a request's behaviour."""

    def __init__(self, rates: Mapping[str, float] | None = None, *, seed: int = 0) -> None:
        self.seed = seed
        self._settings: dict[str, Setting] = {}
        self.set_rates(rates or {})

    @property
    def rates(self) -> dict[str, float]:
        """The behaviours switched on, by name."""
        return {name: s.rate for name, s in self._settings.items()}

    def set_rates(self, rates: Mapping[str, float]) -> None:
        """Replace every rate (behaviours not named are switched off)."""
        settings = {name: Setting(_checked(name, rate)) for name, rate in rates.items() if rate > 0}
        _check_total(settings)
        self._settings = settings

    def set(self, name: str, rate: float, *, when: Predicate | None = None) -> None:
        """Set one behaviour's rate (0 switches it off), optionally only for requests ``when`` accepts."""
        settings = dict(self._settings)
        settings.pop(name, None)
        if _checked(name, rate) > 0:
            settings[name] = Setting(rate, when)
        _check_total(settings)
        self._settings = settings

    def clear(self) -> None:
        """Switch every behaviour off: each request gets a clean answer."""
        self._settings = {}

    def pick(self, request: WireRequest, digest: bytes, attempt: int) -> str | None:
        """The behaviour for one request (None: a clean answer)."""
        if not self._settings:
            return None
        seed = hashlib.blake2b(digest + f"|{self.seed}|{attempt}".encode(), digest_size=8).digest()
        draw = random.Random(int.from_bytes(seed, "big")).random()
        edge = 0.0
        for name, setting in self._settings.items():
            edge += setting.rate
            if draw < edge:
                if setting.when is not None and not setting.when(request):
                    return None
                return name
        return None


def _checked(name: str, rate: float) -> float:
    if name not in BEHAVIOURS:
        raise ValueError(f"unknown simulator behaviour {name!r} (known: {', '.join(BEHAVIOURS)})")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"the rate of {name!r} must be between 0 and 1, not {rate}")
    return rate


def _check_total(settings: Mapping[str, Setting]) -> None:
    total = sum(s.rate for s in settings.values())
    if total > 1.0 + 1e-9:
        raise ValueError(f"behaviour rates add up to {total:g}; together they may not exceed 1")
