"""Translated rows are checked for changed details: numbers by rule, every detail by the judge on request.

The translations come from the provider simulator over real HTTP, scripted per attempt; the judge's replies
go through the simulator's quirks (reasoning before the JSON, a fence, a refusal).
"""

from __future__ import annotations

import json

import pytest

from datamill.core.adapt_request import parse_adapt_request
from datamill.core.expansion import parse_language_expansion
from datamill.core.run_options import RunOptions
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.simulator import ProviderSimulator, WireRequest
from datamill.pipelines.plan import PlanServices, plan_adaptation
from datamill.steps.base import StepContext
from datamill.steps.expansion import LanguageExpansionStep
from datamill.steps.translation_detail import SAME_DETAILS, missing_numbers
from datamill.text.langid import FastLangDetector

SOURCE = "How do I export the 15 invoices I sent before 2024-03-05 to a spreadsheet?"
FAITHFUL = "¿Cómo exporto a una hoja de cálculo las 15 facturas que envié antes del 05.03.2024?"
WRONG_NUMBER = "¿Cómo exporto a una hoja de cálculo las 50 facturas que envié antes del 05.03.2024?"
WRONG_VERB = "¿Cómo elimino de una hoja de cálculo las 15 facturas que envié antes del 05.03.2024?"
RETRIED = "Your previous reply was rejected"


def test_numbers_match_in_any_locale_format_and_a_changed_one_is_named() -> None:
    english = "Pay 1,234.50 USD by 2024-03-05 at 10:30."
    assert missing_numbers(english, "Pague 1.234,50 USD el 05.03.2024 a las 10 h 30.") == []
    assert missing_numbers("It costs 1 234,5 €.", "It costs 1,234.5 €.") == []
    assert missing_numbers("Wait 15 minutes.", "انتظر ١٥ دقيقة.") == []  # Arabic-Indic digits
    assert missing_numbers("Since March 5, 2024.", "Desde el 5 de marzo de 2024.") == []
    assert missing_numbers("Wait 15 minutes, then 2 more.", "Espere 50 minutos, luego 2 más.") == ["15"]
    assert missing_numbers("Three apples.", "Tres manzanas.") == []  # words are the judge's business


def _translator(first: str, second: str):
    """Translations by attempt (the retry carries a note), and a judge that sees 'elimino' as a change."""

    def respond(request: WireRequest) -> str:
        if request.system.startswith("You check translations"):
            translation = request.last_user.split("<<<BEGIN TRANSLATION>>>")[1]
            if "elimino" in translation:
                return json.dumps(
                    {"rationale": "The verb differs: export became delete.",
                     "changed": ["'export' became 'delete'"], "same_details": False}
                )  # fmt: skip
            return json.dumps(
                {"rationale": "Numbers, date and verb match.", "changed": [], "same_details": True}
            )
        return json.dumps({"prompt": second if RETRIED in request.last_user else first})

    return respond


def _step(
    gateway: Gateway, *, judged: bool, kind: str = "translate", judge_model: str = "sim-anthropic/claude"
) -> LanguageExpansionStep:
    body = (
        {"type": "translate", "languages": ["es"], "sample_rate": 1}
        if kind == "translate"
        else {"type": "localize", "pairs": [{"country": "MX", "language": "es"}], "sample_rate": 1}
    )
    model = gateway.model("sim-openai/gpt")
    judge = gateway.model(judge_model) if judged else None
    return LanguageExpansionStep(
        model, parse_language_expansion(body), FastLangDetector(), detail_judge=judge
    )


async def _expand(sim: ProviderSimulator, **kw: object) -> tuple[list[dict[str, object]], StepContext]:
    ctx = StepContext()
    async with Gateway(Routing.from_dict(sim.routes())) as gateway:
        rows = await _step(gateway, **kw).process_row({"_row": 1, "original_prompt": SOURCE}, ctx)  # type: ignore[arg-type]
    return [r for r in rows or [] if r.get("expansion")], ctx


def _translations(sim: ProviderSimulator) -> list[str]:
    return [e.text for e in sim.log if "professional translator" in e.prompt]


async def test_a_lost_number_is_asked_again_naming_it_then_the_fixed_translation_is_kept() -> None:
    async with ProviderSimulator(seed=1, responder=_translator(WRONG_NUMBER, FAITHFUL)) as sim:
        new, ctx = await _expand(sim, judged=False)
    assert [r["original_prompt"] for r in new] == [FAITHFUL]
    assert ctx.rejected == []
    retry = [e.prompt for e in sim.log][1]
    assert "the source's number '15' is not in the translation" in retry
    assert "Keep every number" in retry


async def test_a_number_changed_twice_rejects_the_translation_naming_the_detail() -> None:
    async with ProviderSimulator(seed=1, responder=_translator(WRONG_NUMBER, WRONG_NUMBER)) as sim:
        new, ctx = await _expand(sim, judged=False)
    assert new == []
    assert len(_translations(sim)) == 2
    (rejected,) = ctx.rejected
    assert rejected.reason == (
        "es: failed the detail check twice; "
        "the prompt changed a detail: the source's number '15' is not in the translation"
    )


async def test_localized_rows_convert_numbers_on_purpose_and_are_not_checked_for_them() -> None:
    async with ProviderSimulator(seed=1, responder=_translator(WRONG_NUMBER, WRONG_NUMBER)) as sim:
        new, _ = await _expand(sim, judged=True, kind="localize")
    assert [r["original_prompt"] for r in new] == [WRONG_NUMBER]
    assert len(sim.log) == 1  # no judge call either


async def test_the_judge_catches_a_changed_word_the_number_rule_cannot_see() -> None:
    async with ProviderSimulator(seed=1, responder=_translator(WRONG_VERB, WRONG_VERB)) as sim:
        unjudged, _ = await _expand(sim, judged=False)
        judged, ctx = await _expand(sim, judged=True)
    assert [r["original_prompt"] for r in unjudged] == [WRONG_VERB]  # numbers and date all there
    assert judged == []
    (rejected,) = ctx.rejected
    assert rejected.reason == (
        "es: failed the detail check twice; the translation changed a detail: 'export' became 'delete'"
    )
    judge_calls = [e for e in sim.log if "You check translations" in e.prompt]
    assert len(judge_calls) == 2
    assert {e.model for e in judge_calls} == {"claude"}


@pytest.mark.parametrize("behaviour", ["think", "json_fence", "prose_json", "reasoning_field"])
async def test_the_judges_verdict_is_read_through_reasoning_fences_and_prose(behaviour: str) -> None:
    async with ProviderSimulator(seed=1, responder=_translator(WRONG_VERB, FAITHFUL)) as sim:
        sim.set(behaviour, 1.0, when=lambda r: r.mentions("You check translations"))
        # A Gemini judge: its JSON comes back as text, which a model may wrap (an Anthropic tool call cannot).
        new, ctx = await _expand(sim, judged=True, judge_model="sim-gemini/gemini")
    assert [r["original_prompt"] for r in new] == [FAITHFUL]
    assert ctx.rejected == []
    judged = [e for e in sim.log if "You check translations" in e.prompt]
    assert [e.behaviour for e in judged] == [behaviour, behaviour]
    retry = [e.prompt for e in sim.log if "professional translator" in e.prompt][1]
    assert "'export' became 'delete'" in retry


@pytest.mark.parametrize(("behaviour", "reason"), [("refusal_text", "refusal"), ("truncation", "truncated")])
async def test_a_judge_without_a_verdict_passes_no_translation(behaviour: str, reason: str) -> None:
    async with ProviderSimulator(seed=1, responder=_translator(FAITHFUL, FAITHFUL)) as sim:
        sim.set(behaviour, 1.0, when=lambda r: r.mentions("You check translations"))
        new, ctx = await _expand(sim, judged=True, judge_model="sim-gemini/gemini")
    assert new == []
    (rejected,) = ctx.rejected
    assert rejected.reason.startswith(
        f"es: failed the detail check twice; the detail judge: the judge gave no verdict ({reason}): "
    )


def test_the_run_option_gives_translations_the_runs_judge() -> None:
    gateway = Gateway(Routing.load(), providers={"fake": FakeProvider()})
    request = parse_adapt_request(
        {
            "column_mapping": {"prompt": "q"},
            "language_expansion": {"type": "translate", "languages": ["es"], "sample_rate": 1},
        }
    )

    def expansion(options: RunOptions) -> LanguageExpansionStep:
        plan = plan_adaptation(
            request,
            gateway.model("fake/writer"),
            total_rows=1,
            services=PlanServices(detector=FastLangDetector()),
            options=options,
            judge=gateway.model("fake/judge"),
        )
        (step,) = [s for s in plan.row_steps if isinstance(s, LanguageExpansionStep)]
        return step

    assert expansion(RunOptions()).details is None
    judged = expansion(RunOptions(translation_judge=True))
    assert judged.details is not None
    assert judged.details.model.name == "fake/judge"
    # The estimate counts one check per new row.
    (translate, check) = judged.requests_for({"_row": 1, "original_prompt": SOURCE})
    assert check.json_schema is not None
    assert list(check.json_schema["properties"]) == ["rationale", "changed", SAME_DETAILS.name]
    assert translate.json_schema is not None
