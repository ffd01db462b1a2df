"""Language expansion on the fake model: selection, fan-out columns, language check and retry, row count."""

from __future__ import annotations

import math

import orjson
import pyarrow as pa
import pytest

from datamill.core.errors import PermanentModelError
from datamill.core.expansion import LanguageExpansion, parse_language_expansion
from datamill.core.mapping import parse_column_mapping
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.adapt import run_adaptation
from datamill.pipelines.checkpoint import Checkpoint
from datamill.pipelines.plan import AdaptPlan
from datamill.steps.base import StepContext
from datamill.steps.expansion import (
    RETRY_TEMPERATURE,
    LanguageExpansionStep,
    is_selected,
    row_key,
)
from datamill.steps.mapping import MapColumns
from datamill.steps.templates import load_template
from datamill.text.langid import FakeLanguageDetector, FastLangDetector

#: Real text per language, so the fastText detector genuinely judges it.
TEXTS = {
    "Spanish": {
        "prompt": "¿Cómo puedo restablecer mi contraseña si ya no tengo acceso a mi correo electrónico?",
        "completion": "Abra la página de inicio de sesión, pulse «Olvidé mi contraseña» y siga las "
        "instrucciones que le enviaremos por mensaje de texto.",
        "context": "product: Nube\ntier: Pro",
    },
    "French": {
        "prompt": "Comment puis-je réinitialiser mon mot de passe si je n’ai plus accès à ma messagerie ?",
        "completion": "Ouvrez la page de connexion, cliquez sur « Mot de passe oublié » et suivez les "
        "instructions que nous vous enverrons par SMS.",
        "context": "product: Nuage\ntier: Pro",
    },
    "German": {
        "prompt": "Wie kann ich mein Passwort zurücksetzen, wenn ich keinen Zugriff mehr auf meine "
        "E-Mails habe?",
        "completion": "Öffnen Sie die Anmeldeseite, klicken Sie auf „Passwort vergessen“ und folgen Sie den "
        "Anweisungen, die wir Ihnen per SMS schicken.",
        "context": "product: Wolke\ntier: Pro",
    },
}
ENGLISH = {
    "prompt": "How can I reset my password if I no longer have access to my email account?",
    "completion": "Open the sign-in page, click Forgot password and follow the instructions we send you by "
    "text message.",
    "context": "product: Cloud\ntier: Pro",
}
RETRY_MARK = "previous reply was rejected"


def _target(request: ChatRequest) -> str:
    """The language name the request asks for (the last turn that names one: a repair turn does not)."""
    for message in reversed(request.messages):
        for name in TEXTS:
            if f"into {name}" in message.content or f"language: {name}" in message.content:
                return name
    raise AssertionError("no target language in the request")


def _reply(texts: dict[str, str], request: ChatRequest) -> str:
    assert request.json_schema is not None
    return orjson.dumps({key: texts[key] for key in request.json_schema["required"]}).decode()


def translator(route: Route, request: ChatRequest) -> str:
    return _reply(TEXTS[_target(request)], request)


def _model(responder):
    fake = FakeProvider(responder=responder)
    gateway = Gateway(Routing.load(), providers={"fake": fake})
    return gateway, gateway.model("fake/test"), fake


def _translate(*languages: str, rate: float = 1.0) -> LanguageExpansion:
    return parse_language_expansion({"type": "translate", "languages": list(languages), "sample_rate": rate})


def _row(number: int = 7, *, completion: str | None = ENGLISH["completion"]) -> dict[str, object]:
    return {
        "_row": number,
        "original_prompt": ENGLISH["prompt"],
        "original_completion": completion,
        "_context": ENGLISH["context"],
        "ticket_id": f"T-{number}",
    }


@pytest.fixture(scope="module")
def detector() -> FastLangDetector:
    return FastLangDetector()


async def test_translate_fans_out_one_row_per_language_with_its_columns(detector):
    gateway, model, _ = _model(translator)
    step = LanguageExpansionStep(model, _translate("es", "fr"), detector)
    row = _row()
    ctx = StepContext()
    out = await step.process_row(row, ctx)
    assert out is not None
    original, spanish, french = out
    assert original is row
    assert (original["language"], original["country"], original["expansion"], original["source_row"]) == (
        "en",
        None,
        None,
        None,
    )
    assert original["original_prompt"] == ENGLISH["prompt"]
    for new, lang, name, variant in ((spanish, "es", "Spanish", 1), (french, "fr", "French", 2)):
        assert new["language"] == lang
        assert new["country"] is None
        assert new["expansion"] == "translate"
        assert new["source_row"] == 7
        assert new["ticket_id"] == "T-7"
        assert row_key(new) == (7, variant)
        assert new["original_prompt"] == TEXTS[name]["prompt"]
        assert new["original_completion"] == TEXTS[name]["completion"]
        assert new["_context"] == TEXTS[name]["context"]
    assert row_key(original) == (7, 0)
    assert set(original) == set(spanish) == set(french)
    assert ctx.rejected == []
    await gateway.aclose()


async def test_one_call_per_target_carries_every_field_under_a_schema(detector):
    gateway, model, fake = _model(translator)
    step = LanguageExpansionStep(model, _translate("es", "fr"), detector)
    await step.process_row(_row(), StepContext())
    assert len(fake.calls) == 2
    for call in fake.calls:
        assert call.json_schema is not None
        assert call.json_schema["required"] == ["prompt", "completion", "context"]
        sent = call.messages[-1].content
        assert ENGLISH["prompt"] in sent
        assert "Cloud" in sent
        assert "from English" in sent
    await gateway.aclose()


async def test_requests_for_matches_what_is_sent(detector):
    gateway, model, fake = _model(translator)
    step = LanguageExpansionStep(model, _translate("es", "fr"), detector)
    planned = step.requests_for(_row())
    await step.process_row(_row(), StepContext())
    assert sorted(planned, key=repr) == sorted(fake.calls, key=repr)
    skipped = LanguageExpansionStep(model, _translate("es", rate=0.01), detector)
    unselected = next(n for n in range(1, 1000) if not skipped.selects({"_row": n}))
    assert skipped.requests_for(_row(unselected)) == []
    await gateway.aclose()


async def test_a_row_without_completion_translates_prompt_and_context_only(detector):
    gateway, model, fake = _model(translator)
    step = LanguageExpansionStep(model, _translate("de"), detector)
    out = await step.process_row(_row(completion=None), StepContext())
    assert out is not None
    german = out[1]
    assert fake.calls[0].json_schema is not None
    assert fake.calls[0].json_schema["required"] == ["prompt", "context"]
    assert german["original_completion"] is None
    assert german["original_prompt"] == TEXTS["German"]["prompt"]
    await gateway.aclose()


async def test_wrong_language_is_retried_once_with_a_stronger_instruction(detector):
    def english_first(route: Route, request: ChatRequest) -> str:
        retried = RETRY_MARK in request.messages[-1].content
        return _reply(TEXTS["Spanish"] if retried else ENGLISH, request)

    gateway, model, fake = _model(english_first)
    step = LanguageExpansionStep(model, _translate("es"), detector, seed=3)
    ctx = StepContext()
    out = await step.process_row(_row(), ctx)
    assert out is not None
    assert len(out) == 2
    assert out[1]["original_prompt"] == TEXTS["Spanish"]["prompt"]
    assert ctx.rejected == []
    first, retry = fake.calls
    assert "Spanish only" in retry.messages[-1].content
    assert "detected en" in retry.messages[-1].content
    assert retry.temperature == RETRY_TEMPERATURE
    assert retry.temperature != first.temperature
    assert retry.seed != first.seed
    await gateway.aclose()


async def test_a_variant_failing_twice_is_rejected_and_the_others_kept(detector):
    def french_stays_english(route: Route, request: ChatRequest) -> str:
        target = _target(request)
        return _reply(ENGLISH if target == "French" else TEXTS[target], request)

    gateway, model, fake = _model(french_stays_english)
    step = LanguageExpansionStep(model, _translate("es", "fr"), detector)
    ctx = StepContext()
    out = await step.process_row(_row(), ctx)
    assert out is not None
    assert [r["language"] for r in out] == ["en", "es"]
    assert len(fake.calls) == 3  # es once, fr twice
    [rejection] = ctx.rejected
    assert rejection.step == "language_expansion"
    assert "fr: failed the language check twice" in rejection.reason
    assert "detected en" in rejection.reason
    assert rejection.row["language"] == "fr"
    assert rejection.row["source_row"] == 7
    assert rejection.row["original_prompt"] == ENGLISH["prompt"]  # what the model wrote, for the record
    await gateway.aclose()


async def test_an_empty_field_counts_as_a_failure(detector):
    def blank_completion(route: Route, request: ChatRequest) -> str:
        return orjson.dumps({**TEXTS["Spanish"], "completion": "   "}).decode()

    gateway, model, fake = _model(blank_completion)
    ctx = StepContext()
    out = await LanguageExpansionStep(model, _translate("es"), detector).process_row(_row(), ctx)
    assert out is not None
    assert [r["language"] for r in out] == ["en"]
    assert len(fake.calls) == 2
    assert "the completion came back empty" in ctx.rejected[0].reason
    await gateway.aclose()


async def test_a_model_error_rejects_only_that_variant(detector):
    def broken_german(route: Route, request: ChatRequest) -> str:
        return "not json" if _target(request) == "German" else translator(route, request)

    gateway, model, _ = _model(broken_german)
    ctx = StepContext()
    out = await LanguageExpansionStep(model, _translate("de", "fr"), detector).process_row(_row(), ctx)
    assert out is not None
    assert [r["language"] for r in out] == ["en", "fr"]
    assert "de: model error" in ctx.rejected[0].reason
    await gateway.aclose()


async def test_an_error_that_would_fail_every_row_is_raised(detector):
    def unauthorised(route: Route, request: ChatRequest) -> str:
        raise PermanentModelError("bad key", status=401)

    gateway, model, _ = _model(unauthorised)
    with pytest.raises(PermanentModelError):
        await LanguageExpansionStep(model, _translate("es"), detector).process_row(_row(), StepContext())
    await gateway.aclose()


async def test_a_target_in_the_rows_own_language_is_skipped(detector):
    gateway, model, fake = _model(translator)
    row = {
        "_row": 1,
        "original_prompt": TEXTS["Spanish"]["prompt"],
        "original_completion": None,
        "_context": "",
    }
    out = await LanguageExpansionStep(model, _translate("es", "fr"), detector).process_row(row, StepContext())
    assert out is not None
    assert [r["language"] for r in out] == ["es", "fr"]
    assert len(fake.calls) == 1
    await gateway.aclose()


async def test_localize_writes_country_rows_and_its_prompt_names_currency_and_units(detector):
    gateway, model, fake = _model(translator)
    expansion = parse_language_expansion(
        {"type": "localize", "pairs": [{"country": "MX", "language": "es"}], "sample_rate": 1}
    )
    out = await LanguageExpansionStep(model, expansion, detector).process_row(_row(), StepContext())
    assert out is not None
    mexican = out[1]
    assert (mexican["language"], mexican["country"], mexican["expansion"]) == ("es", "MX", "localize")
    assert out[0]["country"] is None
    sent = "\n".join(m.content for m in fake.calls[0].messages)
    last = fake.calls[0].messages[-1].content
    assert "Mexico" in last
    assert "currency" in last
    assert "units" in last
    assert "names" in sent
    await gateway.aclose()


def test_localize_template_renders_the_country():
    messages = load_template("localize").render(
        fields='{"prompt": "x"}',
        target_language="Portuguese",
        country="Brazil",
        source_language="",
        retry_note="",
    )
    assert "Localize for Brazil (language: Portuguese)" in messages[-1].content
    assert "people in Brazil" in messages[-1].content
    assert messages[0].role == "system"
    assert any(m.role == "assistant" for m in messages)


def test_selection_is_seeded_reproducible_and_near_the_rate():
    chosen = {n for n in range(1, 2001) if is_selected(5, n, 0.2)}
    assert chosen == {n for n in range(1, 2001) if is_selected(5, n, 0.2)}
    assert chosen != {n for n in range(1, 2001) if is_selected(6, n, 0.2)}
    # Binomial(2000, 0.2): sd ≈ 17.9; ±4 sd.
    assert abs(len(chosen) - 400) <= 72
    assert all(is_selected(5, n, 1.0) for n in range(1, 100))
    # A lower rate chooses a subset of a higher one's rows (same hash, lower bar).
    assert {n for n in chosen if is_selected(5, n, 0.1)} == {
        n for n in range(1, 2001) if is_selected(5, n, 0.1)
    }


async def test_output_rows_follow_the_expansion_formula(detector):
    gateway, model, _ = _model(translator)
    expansion = _translate("es", "fr", rate=0.25)
    step = LanguageExpansionStep(model, expansion, detector, seed=11)
    ctx = StepContext()
    outputs = [await step.process_row(_row(n), ctx) for n in range(1, 401)]
    total = sum(1 if out is None else len(out) for out in outputs)
    chosen = sum(out is not None for out in outputs)
    assert ctx.rejected == []
    assert total == 400 + 2 * chosen
    # chosen ~ Binomial(400, 0.25): sd = sqrt(400 × 0.25 × 0.75) ≈ 8.7 rows, so the output's sd is ≈ 17.3
    # rows; 3 sd (52 rows) holds for 99.7% of seeds, and this seed is fixed, so the test cannot flake.
    expected = expansion.expected_output_rows(400)
    assert expected == 600
    tolerance = 3 * 2 * math.sqrt(400 * 0.25 * 0.75)
    assert abs(total - expected) <= tolerance
    await gateway.aclose()


async def test_fan_out_rows_reach_the_output_with_one_schema(tmp_path):
    gateway, model, _ = _model(translator)
    mapping = parse_column_mapping({"prompt": "q", "completion": "a", "context": ["product"]})
    step = LanguageExpansionStep(model, _translate("fr", rate=0.5), FakeLanguageDetector(), seed=1)
    plan = AdaptPlan([MapColumns(mapping)], [step], rows_total=20, rows_selected=20)
    rows = [
        {"q": ENGLISH["prompt"], "a": ENGLISH["completion"], "product": "Cloud", "id": i} for i in range(20)
    ]
    batches = pa.Table.from_pylist(rows).to_batches(max_chunksize=5)
    checkpoint = Checkpoint(tmp_path / "run", "fp")
    result = await run_adaptation(batches, plan, checkpoint)
    table = pa.concat_tables(checkpoint.iter_output())
    chosen = sum(step.selects({"_row": n}) for n in range(1, 21))
    assert 0 < chosen < 20
    assert result.rows_out == table.num_rows == 20 + chosen
    assert {"language", "country", "expansion", "source_row"} <= set(table.column_names)
    french = [r for r in table.to_pylist() if r["expansion"] == "translate"]
    assert len(french) == chosen
    assert all(r["language"] == "fr" and r["original_prompt"] == TEXTS["French"]["prompt"] for r in french)
    assert {r["source_row"] for r in french} == {n for n in range(1, 21) if step.selects({"_row": n})}
    await gateway.aclose()


async def test_a_short_prompt_is_judged_with_its_completion(detector):
    gateway, model, fake = _model(translator)
    row = {
        "_row": 2,
        "original_prompt": "Mot de passe ?",
        "original_completion": TEXTS["French"]["completion"],
        "_context": "",
    }
    step = LanguageExpansionStep(model, _translate("es"), detector)
    out = await step.process_row(row, StepContext())
    assert out is not None
    assert [r["language"] for r in out] == ["fr", "es"]
    assert "from French into Spanish" in fake.calls[0].messages[-1].content
    empty = {"_row": 3, "original_prompt": "", "original_completion": None, "_context": ""}
    assert await step.process_row(empty, StepContext()) is None
    assert empty["language"] is None
    assert len(fake.calls) == 1
    await gateway.aclose()
