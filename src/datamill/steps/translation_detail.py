"""Detail checks of a translation: the numbers its source states, and (optionally) a judge for every detail.

A multilingual embedding says a translation is still about what its source was about; it does not see a
changed detail (an amount, a date, a name, a "not" dropped), which keeps the subject and changes the meaning.
Two checks catch those, on translated rows (``translate``; ``localize`` converts amounts, units and dates on
purpose, so its rows are not checked for details):

- **Numbers** (no model call, always on). Every number the source writes in digits must be in the
  translation. Numbers are compared by their digits, so a number written in the target locale's format
  matches (``1,234.5`` = ``1.234,5`` = ``1 234,5``; ``٣`` = ``3``; leading zeros aside, ``05`` = ``5``), and a
  number whose parts are reordered still matches when every part is there (``2024-03-05`` = ``05.03.2024``,
  ``10:30`` = ``10 h 30``). A number the source writes in words is not checked.
- **Judge** (`DetailJudge`, when the run asks for it). The run's judge compares the source and the
  translation field by field and answers the `SAME_DETAILS` check under the judging protocol of
  `datamill.steps.judging`: the rationale first, then each changed detail in a few words ("the source's 15
  became 50", "'export' became 'delete'", "the negation was dropped"), then the verdict. A judge that gives no
  verdict (a refusal, a cut, no matching JSON) counts as a failed check, naming why, so no translation passes
  unchecked.

A failed check is a problem like a failed language check: the translation is asked once more with the
problem named, then the new row is rejected with a reason that names the changed detail.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from datamill.core.errors import ModelError, fails_every_row
from datamill.llm.types import ChatRequest
from datamill.steps.judging import Check, ask_judge, no_verdict_reason, verdict_schema
from datamill.steps.templates import load_template

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: What a problem found by these checks says, so the step names "the detail check" in its reason.
CHANGED_DETAIL = "changed a detail"
#: What a problem says when the detail judge gave no verdict.
NO_VERDICT = "the detail judge"
#: Most changed details one verdict lists.
MAX_CHANGES = 5
#: Output cap of one verdict: a few sentences of rationale, the changes and the verdict.
VERDICT_MAX_TOKENS = 500

# A number as written: digits, with group or decimal separators between digit runs (a space only before a
# group of exactly three digits, as ``1 234`` is written in French).
_NUMBER = re.compile(r"\d+(?:(?:[.,'’\u00a0\u202f]|[ ](?=\d{3}(?!\d)))\d+)*")
_RUN = re.compile(r"\d+")

SAME_DETAILS = Check(
    "same_details",
    "Does the translation state every detail of the source unchanged?",
    "every number, amount, date, time, name, negation and condition of the source is in the translation, "
    "with the same value (wording, word order and number format may differ)",
    "at least one detail is changed, added or left out (each listed under changed)",
)
DETAIL_SCHEMA: dict[str, Any] = verdict_schema(
    {
        "changed": {"type": "array", "maxItems": MAX_CHANGES, "items": {"type": "string"}},
        SAME_DETAILS.name: SAME_DETAILS.schema(),
    }
)


def _digits(text: str) -> str:
    """The digits of ``text`` as ASCII, without leading zeros (``"0"`` for zero)."""
    digits = "".join(str(unicodedata.decimal(c)) for c in text if c.isdecimal())
    return digits.lstrip("0") or "0"


def missing_numbers(source: str, translation: str) -> list[str]:
    """The numbers ``source`` writes in digits that ``translation`` does not give, as the source writes them.

    See the module docstring for how numbers are compared.
    """
    runs = {_digits(run) for run in _RUN.findall(translation)}
    found = runs | {_digits(number) for number in _NUMBER.findall(translation)}
    missing: list[str] = []
    for number in _NUMBER.findall(source):
        if _digits(number) in found:
            continue
        parts = _RUN.findall(number)
        if len(parts) > 1 and all(_digits(part) in runs for part in parts):
            continue
        missing.append(number)
    return list(dict.fromkeys(missing))


def number_problem(source: Mapping[str, str], translation: Mapping[str, str], keys: tuple[str, ...]) -> str:
    """The first field of ``keys`` whose translation lost a number of its source, named; "" when none did."""
    for key in keys:
        if key in translation and source.get(key):
            missing = missing_numbers(source[key], translation[key])
            if missing:
                shown = ", ".join(repr(n) for n in missing)
                return f"the {key} {CHANGED_DETAIL}: the source's number {shown} is not in the translation"
    return ""


class DetailJudge:
    """The judge check of a translation's details (module docstring; ``translation_detail.yaml``).

    Args:
        model: the judge model (the run's judge, of another family than the writer when one is configured).
        seed: sampling seed passed to providers that honour one.
    """

    name: ClassVar[str] = "translation_detail"

    def __init__(self, model: ModelHandle, *, seed: int = 0) -> None:
        self.model = model
        self.seed = seed
        self.template = load_template("translation_detail")

    def request(
        self, source: Mapping[str, str], translation: Mapping[str, str], language: str
    ) -> ChatRequest:
        """The judge's request for one translated row (the fields both sides have)."""
        keys = [key for key in source if key in translation]
        messages = self.template.render(
            language=language,
            verdict=SAME_DETAILS.text(),
            source=orjson.dumps({k: source[k] for k in keys}, option=orjson.OPT_INDENT_2).decode(),
            translation=orjson.dumps({k: translation[k] for k in keys}, option=orjson.OPT_INDENT_2).decode(),
        )
        return ChatRequest(
            messages,
            max_tokens=VERDICT_MAX_TOKENS,
            temperature=0.0,
            json_schema=DETAIL_SCHEMA,
            seed=self.seed,
        )

    async def problem(self, source: Mapping[str, str], translation: Mapping[str, str], language: str) -> str:
        """The changed details the judge names, or "" when it finds none.

        Raises:
            ModelError: an error that would fail every call (bad key, unknown model, no quota).
        """
        try:
            reply = await ask_judge(self.model, self.request(source, translation, language), tag=self.name)
        except ModelError as exc:
            if fails_every_row(exc):
                raise
            return f"{NO_VERDICT}: {no_verdict_reason(exc)}"
        if reply.data.get(SAME_DETAILS.name) is True:
            return ""
        changes = [str(c).strip() for c in reply.data.get("changed") or [] if str(c).strip()]
        return f"the translation {CHANGED_DETAIL}: " + "; ".join(changes or [reply.rationale])
