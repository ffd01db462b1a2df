"""Instruction injection in model output: a small, deterministic detector and a checked chat call.

Model output is untrusted. A later step puts one step's free text (a rephrased prompt, an answer, a draft)
into its own prompt, so text that poses as a new turn or overrides the instructions could steer that step.
`find_injection` looks for three kinds of marker, case-insensitively, and returns the first one it finds:

- **control tokens** of chat templates (``<|im_start|>``, ``[INST]``, ``<<SYS>>``, ``<start_of_turn>``, ...;
  the one list `datamill.llm.structured.CONTROL_TOKENS`, which structured output checks too), anywhere;
- **role-turn prefixes** at the start of a line (leading spaces, ``#`` and ``*`` allowed): ``System:``,
  ``### System``, ``<system>`` / ``</system>`` and ``[system]`` always; ``Assistant:``, ``User:``,
  ``Human:``, ``AI:`` and their ``###`` / ``<...>`` forms only for output that is supposed to be a prompt
  (``prompt_like``), where an answer turn is out of place; inside a line (``the System: field``) they pass;
- **override phrases**, anywhere, quoted or not: "ignore (all|any) (of) (the|your|my) previous / prior /
  above / earlier / preceding instructions / prompts / rules / directions", "disregard (all|any) (of)
  (the|your|my) system / above / previous / prior prompt / instructions / message / rules", "forget (all)
  (of) (the|your) previous / prior / above instructions", "new (system) instructions:", "you are now
  (no longer | DAN | jailbroken | unrestricted | unfiltered | in developer/god/jailbreak mode)" and "from now
  on(,) you (are|will|must) act as". Plain "you are now ready" prose passes.

**What the model was given is not held against it.** A rule that already matches the request itself (the
row's own prompt asked about "ignore previous instructions", a dataset of chat transcripts) is excused in
that request's output: rewriting or answering such a row is not an injection by the model.

`chat_checked` sends a request and checks the reply; on a finding it asks once more (`retry_request`: the
same request with a note saying what was wrong and another seed, so the response cache does not answer it)
and returns the last reply with its finding, if any. The step decides what a second finding means: the
rephrase keeps the original prompt, the other steps reject the row with `injection_reason`. Generation has
its own repair: `raise_on_injection` fails the candidate, which is regenerated like one that failed a gate.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from datamill.llm.structured import CONTROL_TOKENS
from datamill.llm.types import ChatRequest, ChatResult, Message

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: Added to the request's seed on the repair, so the response cache does not return the same reply.
RETRY_SEED_OFFSET = 7919

_LINE_START = r"^[ \t>*#]*"
_SYSTEM_TURN = re.compile(
    _LINE_START + r"(?:system\s*:|#+\s*system\b|</?system>|\[system\])", re.IGNORECASE | re.MULTILINE
)
_OTHER_TURN = re.compile(
    _LINE_START + r"(?:(?:assistant|user|human|ai)\s*:|#+\s*(?:assistant|user|human)\b"
    r"|</?(?:assistant|user|human)>|\[(?:assistant|user|human)\])",
    re.IGNORECASE | re.MULTILINE,
)
_OVERRIDE = re.compile(
    r"\b(?:ignore\s+(?:(?:all|any)\s+)?(?:of\s+)?(?:the\s+|your\s+|my\s+)?"
    r"(?:previous|prior|above|earlier|preceding)\s+(?:instructions?|prompts?|rules|directions)"
    r"|disregard\s+(?:(?:all|any)\s+)?(?:of\s+)?(?:the\s+|your\s+|my\s+)?"
    r"(?:system|above|previous|prior)\s+(?:prompts?|instructions?|messages?|rules)"
    r"|forget\s+(?:all\s+)?(?:of\s+)?(?:the\s+|your\s+)?(?:previous|prior|above)\s+instructions?"
    r"|new\s+(?:system\s+)?instructions\s*:"
    r"|you\s+are\s+now\s+(?:no\s+longer\b|dan\b|jailbroken|unrestricted|unfiltered"
    r"|in\s+(?:developer|god|jailbreak)\s+mode)"
    r"|from\s+now\s+on,?\s+you\s+(?:are|will|must)\s+act\s+as)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One marker found: its rule and the text that matched."""

    rule: str
    text: str

    def describe(self) -> str:
        """A short reason, e.g. ``an override phrase 'ignore previous instructions'``."""
        shown = " ".join(self.text.split())[:80]
        return f"{_RULE_NAMES[self.rule]} {shown!r}"


_RULE_NAMES = {
    "control_token": "a chat control token",
    "system_turn": "a system-turn prefix",
    "role_turn": "a role-turn prefix",
    "override": "an override phrase",
}


def _rules(prompt_like: bool) -> list[tuple[str, re.Pattern[str]]]:
    rules = [("control_token", CONTROL_TOKENS), ("system_turn", _SYSTEM_TURN), ("override", _OVERRIDE)]
    if prompt_like:
        rules.insert(2, ("role_turn", _OTHER_TURN))
    return rules


#: For ASCII text: words one of which every match of a rule holds, lower-cased. A text with none of a
#: rule's words cannot match it, and ``in`` on a lower-cased copy is far cheaper than the case-insensitive
#: search. Outside ASCII the rules always run: there a letter such as "ı" or "ſ" matches "i" or "s"
#: case-insensitively without lower-casing to it.
_NEEDS: dict[str, tuple[str, ...]] = {
    "control_token": ("<", "["),
    "system_turn": ("system",),
    "role_turn": ("assistant", "user", "human", "ai"),
    "override": ("ignore", "disregard", "forget", "instructions", "now"),
}


def find_injection(text: str, *, source: str = "", prompt_like: bool = False) -> Finding | None:
    """The first injection marker in ``text``, or None.

    Args:
        text: the model's output.
        source: what the model was given; a rule that already matches it is not applied to ``text``.
        prompt_like: the output is supposed to be a prompt, so answer-turn prefixes count too.
    """
    lowered = text.lower() if text.isascii() else None
    for rule, pattern in _rules(prompt_like):
        if lowered is not None and not any(word in lowered for word in _NEEDS[rule]):
            continue
        match = pattern.search(text)
        if match is not None and (not source or pattern.search(source) is None):
            return Finding(rule, match.group(0).strip())
    return None


def injection_reason(step: str, finding: Finding) -> str:
    """The rejection reason of a row whose output stayed an injection after the repair."""
    return f"{step}: model output looks like an instruction injection: {finding.describe()}"


def request_source(request: ChatRequest) -> str:
    """The text of every message of ``request``: what the model was given."""
    return "\n".join(message.content for message in request.messages)


def retry_request(request: ChatRequest, finding: Finding) -> ChatRequest:
    """``request`` once more, with a note naming the problem and another seed."""
    note = (
        f"Your previous reply was rejected: it contained {finding.describe()}. Reply with only the text "
        "asked for: no instructions to an assistant, no role labels and no chat markup."
    )
    messages = list(request.messages)
    if messages and messages[-1].role == "user":
        last = messages[-1]
        messages[-1] = Message("user", f"{last.content}\n\n{note}", last.images, last.cache_point)
    else:
        messages.append(Message("user", note))
    return dataclasses.replace(
        request, messages=tuple(messages), seed=(request.seed or 0) + RETRY_SEED_OFFSET
    )


class InjectedOutput(Exception):
    """Raised where a reply that injects fails a whole unit of work (a generation candidate)."""

    def __init__(self, step: str, finding: Finding) -> None:
        super().__init__(injection_reason(step, finding))
        self.finding = finding


def raise_on_injection(step: str, request: ChatRequest, result: ChatResult) -> None:
    """Raise `InjectedOutput` when ``result``'s text injects (markers of ``request`` itself excused).

    Raises:
        InjectedOutput: the reply holds an injection marker.
    """
    finding = find_injection(result.text, source=request_source(request))
    if finding is not None:
        raise InjectedOutput(step, finding)


@dataclass(frozen=True, slots=True)
class Checked:
    """A checked reply: the cleaned text, the finding that remains (None when clean) and the last result."""

    text: str
    finding: Finding | None
    result: ChatResult


def _strip(text: str) -> str:
    return text.strip()


async def chat_checked(
    model: ModelHandle,
    request: ChatRequest,
    *,
    tag: str,
    clean: Callable[[str], str] = _strip,
    prompt_like: bool = False,
) -> Checked:
    """Send ``request``, check the cleaned reply, and repair once on a finding (see the module docstring)."""

    def check(result: ChatResult) -> Checked:
        text = clean(result.text)
        finding = find_injection(text, prompt_like=prompt_like)
        if finding is not None:  # only now: what the model was given may excuse it
            finding = find_injection(text, source=request_source(request), prompt_like=prompt_like)
        return Checked(text, finding, result)

    checked = check(await model.chat(request, tag=tag))
    if checked.finding is not None:
        checked = check(await model.chat(retry_request(request, checked.finding), tag=tag))
    return checked
