"""What counts as an answer: a provider's reply with the reasoning split off, or a named reason it is not one.

Real models do not always answer. The gateway passes every reply through `usable_reply` before anything
else sees it:

- **Reasoning** written before the answer is split off: a leading ``<think>…</think>`` (or ``<thinking>``)
  block, as DeepSeek-R1 and Qwen3 write it on vLLM or llama.cpp, or a bare ``…</think>`` when the chat
  template opened the tag in the prompt. It joins what the provider returned apart (``reasoning_content``,
  thinking blocks) in ``reasoning``; the answer is what follows.
- **Refusals**: the provider's refusal field or stop reason, or a reply that is only a refusal sentence
  ("I can't help with that.", "I'm sorry, but I cannot assist with this request."), raise `RefusalError`.
  The sentence test is deliberately narrow: the reply must be short (`MAX_REFUSAL_CHARS`) and open with a
  refusal whose object is the request itself (that, this, it, your request) or nothing, so an answer that
  declines one part and then helps, or a user request in the first person, is not taken for a refusal.
- **Cuts**: ``finish_reason: length`` (OpenAI ``length``, Anthropic ``max_tokens``, Gemini ``MAX_TOKENS``)
  raises `TruncatedReplyError`, whatever text came before the cut.
- **Filtered**: ``content_filter`` (OpenAI and Azure; Gemini ``SAFETY`` and its kin) raises
  `ContentFilteredError`.
- **Empty**: no answer text once reasoning is split off raises `EmptyReplyError`.

The gateway retries such a reply within its own small budget (`RetryPolicy.max_reply_attempts`) and then
raises the error, whose message names the reason; the pipeline step rejects the row with it. No refusal,
cut, filtered or empty reply is ever returned as an answer.
"""

from __future__ import annotations

import re

from datamill.core.errors import (
    ContentFilteredError,
    EmptyReplyError,
    RefusalError,
    TruncatedReplyError,
)
from datamill.llm.types import ProviderReply, Route

#: A reply longer than this is never read as a refusal sentence (a refusal is one or two sentences).
MAX_REFUSAL_CHARS = 300
#: Characters of a refused or cut reply quoted in the error message.
_SHOWN_CHARS = 120

_THINK_BLOCK = re.compile(r"^\s*<(think|thinking|reasoning)>(.*?)</\1>\s*", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"^\s*<(think|thinking|reasoning)>", re.IGNORECASE)
_THINK_OPEN_ANYWHERE = re.compile(r"<(think|thinking|reasoning)>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</(think|thinking|reasoning)>\s*", re.IGNORECASE)

_NOT = (
    r"(?:can(?:no|['’])?t|can not|(?:won['’]t|will not)(?: be able to)?|"
    r"(?:am|['’]m) (?:unable|not able|not going) to|must (?:decline|refuse) to)"
)
_VERB = (
    r"(?:help|assist|comply|provide|fulfil+|do|complete|generate|create|write|answer|engage|support|continue|"
    r"respond|produce|share|give)"
)
_OBJECT = (
    r"(?:(?:you\s+)?(?:with\s+)?(?:that|this|it|your request|that request|this request|such (?:a )?requests?|"
    r"(?:that|this) (?:kind of |type of )?(?:request|content|information|task|question|topic)))?"
)
_OPENER = (
    r"(?:(?:i['’]m|i am) (?:sorry|afraid)|sorry|i apologi[sz]e|unfortunately|"
    r"as an ai(?: language model| assistant)?)?[,.!]?\s*(?:but\s*,?\s*)?"
)
_REFUSAL = re.compile(
    rf"^[\"'“]?{_OPENER}i\s*{_NOT} {_VERB}\b\s*{_OBJECT}\s*(?:[.!]|$)"
    rf"|^[\"'“]?{_OPENER}i must (?:decline|refuse)\b",
    re.IGNORECASE,
)


def split_reasoning(text: str) -> tuple[str, str | None]:
    """``text`` without the reasoning a model wrote before its answer, and that reasoning (None if none).

    An opened ``<think>`` that never closes is all reasoning: the answer is empty.
    """
    if "<" not in text:  # every tag starts with one: most replies need no pattern at all
        return text, None
    match = _THINK_BLOCK.match(text)
    if match is not None:
        return text[match.end() :], match.group(2).strip()
    if _THINK_OPEN.match(text):
        return "", _THINK_OPEN.sub("", text, count=1).strip()
    close = _THINK_CLOSE.search(text)
    if close is not None and _THINK_OPEN_ANYWHERE.search(text, 0, close.start()) is None:
        return text[close.end() :], text[: close.start()].strip()
    return text, None


def is_refusal(text: str) -> bool:
    """Whether ``text`` is only a refusal (see the module docstring for how narrow the test is)."""
    stripped = text.strip()
    return 0 < len(stripped) <= MAX_REFUSAL_CHARS and _REFUSAL.match(stripped) is not None


def usable_reply(reply: ProviderReply, route: Route) -> ProviderReply:
    """``reply`` with its reasoning split off, when it is an answer.

    Raises:
        RefusalError, ContentFilteredError, TruncatedReplyError, EmptyReplyError: it is not one.
    """
    text, written = split_reasoning(reply.text)
    reasoning = "\n\n".join(part for part in (reply.reasoning, written) if part) or None
    finish = reply.finish_reason
    if reply.refusal or finish == "refusal":
        said = (reply.refusal or text).strip()
        raise RefusalError(f"{route.name}: the model refused" + (f": {_shown(said)}" if said else ""))
    if finish == "content_filter":
        raise ContentFilteredError(f"{route.name}: the provider's content filter withheld the answer")
    if finish == "length":
        what = "during its reasoning, before any answer" if not text.strip() else _shown(text, tail=True)
        tokens = reply.usage.output_tokens + reply.usage.thinking_tokens
        raise TruncatedReplyError(
            f"{route.name}: the reply was cut off at the token limit after {tokens} tokens (finish reason "
            f"'length'): {what}"
        )
    if not text.strip():
        only = " (only reasoning)" if reasoning else ""
        raise EmptyReplyError(f"{route.name}: the model returned an empty reply{only}")
    if is_refusal(text):
        raise RefusalError(f"{route.name}: the model refused: {_shown(text.strip())}")
    return ProviderReply(text, reply.usage, finish, None, reasoning)


def _shown(text: str, *, tail: bool = False) -> str:
    flat = " ".join(text.split())
    if len(flat) <= _SHOWN_CHARS:
        return repr(flat)
    return repr("..." + flat[-_SHOWN_CHARS:]) if tail else repr(flat[:_SHOWN_CHARS] + "...")
