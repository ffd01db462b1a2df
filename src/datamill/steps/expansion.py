"""Language expansion: a sample of rows rewritten per language (translate) or per country (localize).

Each new row is checked by language identification (`datamill.text.langid`) before it is kept.

**Which rows.** A row is expanded when ``hash(seed, _row)``, read as a fraction in [0, 1), is below
``sample_rate`` (`is_selected`). The choice depends on nothing but the seed and the row number, so it is the
same whatever the batch size, the concurrency or a resume, and about ``input × sample_rate`` rows are chosen
(a binomial count). Each chosen row gets one new row per target, so a run outputs about
``input × (1 + sample_rate × targets)`` rows, as `LanguageExpansion.expected_output_rows` quotes. The one
exception: a translate target in the language the row is already written in (judged with confidence) is
skipped, since the "translation" would duplicate the row.

**One call per new row.** The prompt, the original completion (when mapped and not empty) and the rendered
context (when not empty) go to the model as one JSON object and come back under the same keys, enforced by a
JSON schema. One call is cheaper than one per field (the instructions and the few-shot turn are paid once) and
keeps the fields consistent: a name or an amount localized in the prompt is the same one in the answer.

**Language check.** The new prompt and completion are each checked with `check_language` (short or undecided
texts pass), and every field is checked for instruction injection (`datamill.steps.injection`; a marker
already in the source field is excused). The context is not language-checked: its labels stay in the source
language and it is often names and codes. A new row that fails, or comes back with an empty field, is asked
once more (`RETRY_TEMPERATURE`, another seed, and an instruction naming what went wrong); if it fails again
that new row alone is rejected with `ctx.reject` (the rejected-rows file shows what the model wrote), and the
source row and its other new rows go on. A model error on one new row rejects that row only, unless it would
fail every row (unknown model, 401/403/404), which is raised so the run stops.

**Meaning check** (when the run has a multilingual embedder, `datamill.text.multilingual`). A new prompt (and
completion) that passes the language check is compared with its source field: below
`TRANSLATION_MIN_SIMILARITY` cosine similarity the new row is asked once more and then rejected, like a failed
language check ("the meaning check"). Language ID only says the language is right; this says the text is
still about what the source said. Measured with multilingual-e5-small on short support prompts: eight good
translations (Spanish, French, German, Chinese) scored 0.84–0.95 against their source; of eight failures (an
answer instead of a translation, a refusal, another question of the same domain), the five at 0.73–0.84 fall
below 0.84 and the three at 0.85–0.88 (a changed detail: "export" became "delete") pass. The check catches a
change of subject, not of detail, which the detail checks below are for.

**Detail checks** (translate only; `datamill.steps.translation_detail`). Every number the source prompt or
completion writes in digits must be in its translation, in any locale's format (no model call, always on);
with a ``detail_judge`` (the run option ``translation_judge``), the run's judge also compares every detail
(numbers, names, dates, negations, conditions) under the judging protocol. A translation that changed a
detail is asked once more, with the changed detail named, then rejected ("failed the detail check twice;
the completion changed a detail: the source's number '15' is not in the translation"). Localized rows convert
amounts, units and dates on purpose and are not checked for details.

**Columns.** New rows: ``language`` (the target code), ``country`` (localize only, else None), ``expansion``
(``translate`` or ``localize``), ``source_row`` (the ``_row`` they came from), and every other column of the
source row as it was. The source row: ``language`` = the detected language of its prompt (with its
completion when the prompt alone is too short to judge; None when there is no text), and None for the rest.
Every row gets every column, so output batches have one schema.

**Row identity.** A new row keeps its source's ``_row`` and gets ``_variant`` = the target's position (1, 2,
...; 0 for the source row), so ``(_row, _variant)`` (`row_key`) is unique and stable across runs. Keeping
``_row`` rather than encoding a new number means the rejected-rows file points at the input row a variant
came from and ``_row`` stays the 1-based source row number everywhere. Nothing keys rows by ``_row`` alone
after this step: deduplication runs before it, checkpoints key batches by index, and a variant stays in its
source's batch. A later step that draws seeded choices per row should key on `row_key`.
"""

from __future__ import annotations

import copy
import hashlib
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from datamill.core.errors import ModelError, fails_every_row
from datamill.core.expansion import ExpansionType, LanguageExpansion
from datamill.core.languages import country_name, language_name, normalize_language
from datamill.llm.types import ChatRequest
from datamill.steps.base import Row, RowStep, StepContext
from datamill.steps.gather import gather_or_cancel
from datamill.steps.injection import find_injection
from datamill.steps.templates import load_template
from datamill.steps.translation_detail import CHANGED_DETAIL, NO_VERDICT, DetailJudge, number_problem
from datamill.text.embeddings import BatchingEmbedder
from datamill.text.langid import MIN_CONFIDENCE, MIN_LETTERS, check_language, count_letters, same_language

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle
    from datamill.text.embeddings import Embedder
    from datamill.text.langid import LanguageDetector

#: Cosine similarity (multilingual-e5-small) below which a new field has drifted from its source's meaning.
TRANSLATION_MIN_SIMILARITY = 0.84
#: Low temperature: a translation has one right meaning; a little freedom lets it read naturally.
TEMPERATURE = 0.2
#: The retry samples more freely, so it does not repeat the output that failed.
RETRY_TEMPERATURE = 0.7
#: Output-token cap per input character: English runs about 4 characters a token, but scripts that
#: tokenise poorly (Devanagari, Thai) can take a token per character, and a cut reply fails its schema.
OUTPUT_TOKENS_PER_CHAR = 1.0
#: Room for the JSON keys, quotes and escapes around the translated values.
JSON_OVERHEAD_TOKENS = 128
#: Translated fields that must pass the language check (the context keeps its labels, see above).
CHECKED_FIELDS = ("prompt", "completion")
#: JSON key sent to the model → the row column it comes from and goes back to.
FIELD_COLUMNS = {"prompt": "original_prompt", "completion": "original_completion", "context": "_context"}
_HASH_SPACE = float(2**64)


@dataclass(frozen=True, slots=True)
class Target:
    """One new row to write per chosen row: a language, and a country when localizing."""

    index: int
    language: str
    country: str | None = None

    def describe(self) -> str:
        return f"{self.country}:{self.language}" if self.country else self.language


@dataclass(frozen=True, slots=True)
class SourceLanguage:
    """The detected language of a row; ``judged`` when the text was long and the detector confident."""

    code: str | None
    judged: bool = False


def expansion_targets(expansion: LanguageExpansion) -> tuple[Target, ...]:
    """The targets of ``expansion`` in the order given, numbered from 1."""
    if expansion.type is ExpansionType.TRANSLATE:
        return tuple(Target(i, code) for i, code in enumerate(expansion.languages, 1))
    return tuple(Target(i, p.language, p.country) for i, p in enumerate(expansion.pairs, 1))


def is_selected(seed: int, row_number: int, sample_rate: float) -> bool:
    """Whether row ``row_number`` is expanded: a seeded hash of the row, as a fraction, below the rate."""
    digest = hashlib.blake2b(f"{seed}:{row_number}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SPACE < sample_rate


def row_key(row: Row) -> tuple[int, int]:
    """A row's unique identity after expansion: (source row number, variant; 0 for the source row)."""
    return int(row["_row"]), int(row.get("_variant") or 0)


def source_fields(row: Row) -> dict[str, str]:
    """The texts of ``row`` that a new row rewrites, by JSON key; empty when the row has no prompt."""
    fields: dict[str, str] = {}
    for key, column in FIELD_COLUMNS.items():
        value = row.get(column)
        if isinstance(value, str) and value.strip():
            fields[key] = value
    return fields if "prompt" in fields else {}


def fields_schema(keys: list[str]) -> dict[str, Any]:
    """The JSON schema of the model's reply: exactly ``keys``, each a non-empty string."""
    return {
        "type": "object",
        "properties": {key: {"type": "string", "minLength": 1} for key in keys},
        "required": keys,
        "additionalProperties": False,
    }


class LanguageExpansionStep(RowStep):
    """Adds one translated or localized row per target for a seeded sample of rows (see module docstring).

    Args:
        model: the model that writes the new rows.
        expansion: the validated targets and sample rate.
        detector: checks the language of each new row and names the source row's language.
        seed: selects the rows; the same seed chooses the same rows.
        meaning: a multilingual embedder for the meaning check (None: no meaning check).
        min_similarity: the meaning check's cut-off (`TRANSLATION_MIN_SIMILARITY`).
        detail_judge: the judge model of the detail check of translations (None: numbers only).
    """

    name: ClassVar[str] = "language_expansion"
    model: ModelHandle
    input_columns = ("original_prompt", "original_completion", "_context", "_row")
    output_columns = ("language", "country", "expansion", "source_row", "_variant")

    def __init__(
        self,
        model: ModelHandle,
        expansion: LanguageExpansion,
        detector: LanguageDetector,
        *,
        seed: int = 0,
        meaning: Embedder | None = None,
        min_similarity: float = TRANSLATION_MIN_SIMILARITY,
        detail_judge: ModelHandle | None = None,
    ) -> None:
        self.model = model
        self.expansion = expansion
        self.detector = detector
        self.seed = seed
        self.meaning = BatchingEmbedder(meaning) if meaning is not None else None
        self.min_similarity = min_similarity
        self.targets = expansion_targets(expansion)
        self.template = load_template(expansion.type.value)
        self.translating = expansion.type is ExpansionType.TRANSLATE
        self.details = (
            DetailJudge(detail_judge, seed=seed) if detail_judge is not None and self.translating else None
        )

    def selects(self, row: Row) -> bool:
        """Whether ``row`` is expanded (see `is_selected`)."""
        return is_selected(self.seed, int(row["_row"]), self.expansion.sample_rate)

    def estimate_requests(self) -> tuple[float, RowStep]:
        """Every sample row rendered (rate 1), counted at the sample rate: the expected value."""
        # The step samples rows by a seeded hash; asking at rate 1 renders every sample row's targets, and the
        # rate scales the count back to its expected value instead of this sample's draw.
        everything = copy.copy(self)
        everything.expansion = replace(self.expansion, sample_rate=1.0)
        return self.expansion.sample_rate, everything

    def estimate_rows_out(self, rows_in: int) -> int:
        """``input × (1 + sample_rate × targets)``, as the contract quotes."""
        return self.expansion.expected_output_rows(rows_in)

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """The first-attempt requests ``process_row`` would send for ``row`` (retries are not predicted)."""
        fields = source_fields(row)
        if not fields or not self.selects(row):
            return []
        source = self.source_language(row)
        requests = [self._request(fields, target, source) for target in self._targets_for(source)]
        if self.details is not None:  # one detail check per new row, sized on the source's fields
            checked = {k: fields[k] for k in CHECKED_FIELDS if k in fields}
            requests += [
                self.details.request(checked, checked, language_name(target.language))
                for target in self._targets_for(source)
            ]
        return requests

    async def process_row(self, row: Row, ctx: StepContext) -> list[Row] | None:
        source = self.source_language(row)
        row.update(language=source.code, country=None, expansion=None, source_row=None, _variant=0)
        fields = source_fields(row)
        if not fields or not self.selects(row):
            return None
        targets = self._targets_for(source)
        made = await gather_or_cancel([self._variant(row, fields, t, source, ctx) for t in targets])
        return [row, *(new for new in made if new is not None)]

    def source_language(self, row: Row) -> SourceLanguage:
        """The language of the row's prompt; its completion is added when the prompt is too short to judge."""
        text = row.get("original_prompt") or ""
        if count_letters(text) < MIN_LETTERS:
            text = f"{text}\n{row.get('original_completion') or ''}"
        letters = count_letters(text)
        if letters == 0:
            return SourceLanguage(None)
        code, confidence = self.detector.detect(text)
        return SourceLanguage(code, letters >= MIN_LETTERS and confidence >= MIN_CONFIDENCE)

    def _targets_for(self, source: SourceLanguage) -> tuple[Target, ...]:
        if self.expansion.type is not ExpansionType.TRANSLATE or not source.judged or source.code is None:
            return self.targets
        code = source.code
        return tuple(t for t in self.targets if not same_language(t.language, code))

    def _request(
        self, fields: dict[str, str], target: Target, source: SourceLanguage, retry_note: str = ""
    ) -> ChatRequest:
        messages = self.template.render(
            fields=orjson.dumps(fields, option=orjson.OPT_INDENT_2).decode(),
            target_language=language_name(target.language),
            country=country_name(target.country) if target.country else "",
            source_language=_source_name(source),
            retry_note=retry_note,
        )
        chars = sum(len(v) for v in fields.values())
        return ChatRequest(
            messages,
            max_tokens=math.ceil(chars * OUTPUT_TOKENS_PER_CHAR) + JSON_OVERHEAD_TOKENS,
            temperature=RETRY_TEMPERATURE if retry_note else TEMPERATURE,
            json_schema=fields_schema(list(fields)),
            seed=self.seed + 1 if retry_note else self.seed,
        )

    async def _variant(
        self, row: Row, fields: dict[str, str], target: Target, source: SourceLanguage, ctx: StepContext
    ) -> Row | None:
        """The new row for ``target``, or None after rejecting it."""
        new = dict(row)
        new.update(
            language=target.language,
            country=target.country,
            expansion=self.expansion.type.value,
            source_row=row["_row"],
            _variant=target.index,
        )
        problem = ""
        for attempt in range(2):
            request = self._request(fields, target, source, _retry_note(target, problem) if attempt else "")
            try:
                result = await self.model.chat(request, tag=self.name)
            except ModelError as exc:
                if fails_every_row(exc):
                    raise
                ctx.reject(new, self.name, f"{target.describe()}: model error: {exc}")
                return None
            written = {key: str(result.data.get(key) or "").strip() for key in fields}
            for key, value in written.items():
                new[FIELD_COLUMNS[key]] = value
            problem = (
                self._problem(written, target, fields)
                or self._numbers(written, fields)
                or await self._drift(written, fields)
                or await self._judged_details(written, fields, target)
            )
            if not problem:
                return new
        check = (
            "the injection check"
            if _INJECTED in problem
            else "the meaning check"
            if _DRIFTED in problem
            else "the detail check"
            if CHANGED_DETAIL in problem or problem.startswith(NO_VERDICT)
            else "the language check"
        )
        ctx.reject(new, self.name, f"{target.describe()}: failed {check} twice; {problem}")
        return None

    def _problem(self, written: dict[str, str], target: Target, fields: dict[str, str]) -> str:
        """What is wrong with a new row's fields, or "" when they pass."""
        for key, value in written.items():
            if not value:
                return f"the {key} came back empty"
        for key, value in written.items():
            finding = find_injection(value, source=fields.get(key, ""), prompt_like=key == "prompt")
            if finding is not None:
                return f"the {key} {_INJECTED}: {finding.describe()}"
        for key in CHECKED_FIELDS:
            if key in written:
                check = check_language(self.detector, written[key], target.language)
                if not check.passed:
                    return f"the {key} was {check.describe()}"
        return ""

    def _numbers(self, written: dict[str, str], fields: dict[str, str]) -> str:
        """A number of the source that a translation lost, named; "" when none (or when localizing)."""
        return number_problem(fields, written, CHECKED_FIELDS) if self.translating else ""

    async def _judged_details(self, written: dict[str, str], fields: dict[str, str], target: Target) -> str:
        """The details the judge found changed, named; "" when none (or without a detail judge)."""
        if self.details is None:
            return ""
        source = {k: fields[k] for k in CHECKED_FIELDS if k in fields and k in written}
        return await self.details.problem(source, written, language_name(target.language))

    async def _drift(self, written: dict[str, str], fields: dict[str, str]) -> str:
        """The field that drifted from its source's meaning (module docstring), or ""."""
        if self.meaning is None:
            return ""
        for key in CHECKED_FIELDS:
            if key in written and fields.get(key):
                vectors = await self.meaning.embed([fields[key], written[key]])
                similarity = float(vectors[0] @ vectors[1])
                if similarity < self.min_similarity:
                    return (
                        f"the {key} {_DRIFTED} (multilingual similarity {similarity:.2f}, "
                        f"below {self.min_similarity:g})"
                    )
        return ""


_INJECTED = "looks like an instruction injection"
_DRIFTED = "drifted from the source's meaning"


def _retry_note(target: Target, problem: str) -> str:
    """The stronger instruction of the second attempt."""
    name = language_name(target.language)
    keep = (
        " Keep every number, amount, date, name, negation and condition of the source as it is."
        if CHANGED_DETAIL in problem or problem.startswith(NO_VERDICT)
        else ""
    )
    return (
        f"Your previous reply was rejected: {problem}.{keep} Write every value in {name} only, "
        f"and reply with the JSON object only."
    )


def _source_name(source: SourceLanguage) -> str:
    if not source.judged or source.code is None:
        return ""
    canonical = normalize_language(source.code)
    return language_name(canonical) if canonical else ""
