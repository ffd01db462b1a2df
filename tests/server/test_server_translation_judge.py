"""``translation_judge`` on the server, through the official SDK: the run's judge checks each translation for
changed details, as it does on the command line.

The translations and the judge's verdicts come from the provider simulator on loopback; its request log shows
that the judge was asked. A translation that changed a detail is asked again naming the change, and rejected
when the retry changes it too. A bad value is refused before anything is stored, naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adaption
import httpx
import pytest
from runs_helpers import run_settings, runs_server, upload, wait_done
from server_helpers import fields_of
from sqlalchemy import select

from conftest import RunningServer
from datamill.llm.simulator import ProviderSimulator, WireRequest
from datamill.llm.simulator.thread import serve_in_thread
from datamill.services.adaptation.run_plan import RunPlan, run_fingerprint, run_identity
from datamill.store import Run

MODEL = "sim-openai/gpt"
SOURCE = "How do I export the 15 invoices I sent before 2024-03-05 to a spreadsheet?"
FAITHFUL = "¿Cómo exporto a una hoja de cálculo las 15 facturas que envié antes del 05.03.2024?"
WRONG_VERB = "¿Cómo elimino de una hoja de cálculo las 15 facturas que envié antes del 05.03.2024?"
RETRIED = "Your previous reply was rejected"
JUDGE = "You check translations"
CHANGE = "'export' became 'delete'"
REJECTED = f"es: failed the detail check twice; the translation changed a detail: {CHANGE}"
ANSWER = "Open the Invoices page, select the invoices and choose Export."
ANSWER_ES = "Abra la página de facturas, seleccione las facturas y elija Exportar."
MAPPING: Any = {"prompt": "question", "completion": "answer"}
NO_RECIPES: Any = {
    "recipes": {"deduplication": False, "prompt_rephrase": False, "prompt_metadata_injection": False}
}


class Translator:
    """Translations by attempt (a retry carries a note), and a judge that sees 'elimino' as a change."""

    def __init__(self) -> None:
        self.first = self.second = FAITHFUL

    def __call__(self, request: WireRequest) -> str:
        if request.system.startswith(JUDGE):
            translation = request.last_user.split("<<<BEGIN TRANSLATION>>>")[1]
            if "elimino" in translation:
                return json.dumps(
                    {"rationale": "The verb differs.", "changed": [CHANGE], "same_details": False}
                )
            return json.dumps(
                {"rationale": "Numbers, date and verb match.", "changed": [], "same_details": True}
            )
        if request.schema is not None:
            prompt = self.second if RETRIED in request.last_user else self.first
            fields = {"prompt": prompt, "completion": ANSWER_ES}
            return json.dumps({key: fields[key] for key in request.schema["properties"]})
        return ANSWER


@pytest.fixture(scope="module")
def simulated() -> Iterator[tuple[ProviderSimulator, Translator]]:
    translator = Translator()
    with serve_in_thread(responder=translator) as sim:
        yield sim, translator


@pytest.fixture
def served(
    simulated: tuple[ProviderSimulator, Translator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RunningServer, ProviderSimulator, Translator]]:
    """A server of its own per test: its response cache must not answer one test with another's replies."""
    sim, translator = simulated
    # The multilingual meaning check loads an embedding model; it is beside the point here.
    monkeypatch.setattr("datamill.services.adaptation.step_services.e5_available", lambda: False)
    routes = sim.write_routes(tmp_path / "routes.yaml")
    settings = run_settings(model=MODEL, routes_path=routes, evaluate=False)
    with runs_server(tmp_path / "srv", settings) as srv:
        yield srv, sim, translator


@pytest.fixture
def source(served: Any, tmp_path: Path) -> tuple[adaption.Adaption, str]:
    srv, sim, translator = served
    client = srv.client()
    rows = [{"id": 1, "question": SOURCE, "answer": ANSWER}]
    dataset_id = upload(client, tmp_path / "qa.jsonl", rows, processing_mode="raw", column_mapping=MAPPING)
    sim.log.clear()
    translator.first = translator.second = FAITHFUL
    return client, dataset_id


def _rows(client: adaption.Adaption, dataset_id: str) -> list[dict[str, Any]]:
    text = client.datasets.download(dataset_id, file_format="jsonl").text()
    return [json.loads(line) for line in text.splitlines()]


def _translated(client: adaption.Adaption, dataset_id: str) -> list[str]:
    return [r["original_prompt"] for r in _rows(client, dataset_id) if r.get("expansion")]


def _judged(sim: ProviderSimulator) -> list[str]:
    return [e.prompt for e in sim.log if e.prompt.startswith(JUDGE) or JUDGE in e.prompt]


def _translations(sim: ProviderSimulator) -> list[str]:
    return [e.prompt for e in sim.log if "professional translator" in e.prompt]


def _stored(srv: RunningServer, dataset_id: str) -> Run:
    with srv.context.store.session() as session:
        return session.scalars(select(Run).where(Run.dataset_id == dataset_id)).one()


def _translate(client: adaption.Adaption, dataset_id: str, **extra: Any) -> str:
    launched = client.datasets.translate(
        dataset_id, sample_rate=1, languages=["es"], extra_body=extra or None
    )
    assert launched.dataset_id is not None
    assert wait_done(client, launched.dataset_id).status == "succeeded"
    return launched.dataset_id


def test_translate_with_the_judge_asks_again_naming_the_change_then_keeps_the_fixed_row(
    served: Any, source: tuple[adaption.Adaption, str]
) -> None:
    srv, sim, translator = served
    client, dataset_id = source
    translator.first = WRONG_VERB  # numbers and date are all there: only the judge can see the change
    derived = _translate(client, dataset_id, translation_judge=True)
    assert _translated(client, derived) == [FAITHFUL]
    judged = _judged(sim)
    assert len(judged) == 2  # the first translation, then the retry
    assert "elimino" in judged[0]
    assert "exporto" in judged[1]
    retry = _translations(sim)[1]
    assert RETRIED in retry
    assert CHANGE in retry
    run = _stored(srv, derived)
    assert run.options["translation_judge"] is True
    assert run.request["translation_judge"] is True
    # The option is part of the run's identity: its checkpoint is not one of the same run without it.
    plan = RunPlan.of_record(run.kind, run.request, run.model, run.options, run.estimate or {})
    unjudged = RunPlan.of_record(
        run.kind, run.request, run.model, run.options | {"translation_judge": False}, run.estimate or {}
    )
    identity = run_identity(run.id)
    assert run_fingerprint(identity, plan, None) != run_fingerprint(identity, unjudged, None)


def test_a_detail_changed_twice_is_rejected_with_the_change_named(
    served: Any, source: tuple[adaption.Adaption, str]
) -> None:
    srv, sim, translator = served
    client, dataset_id = source
    translator.first = translator.second = WRONG_VERB
    derived = _translate(client, dataset_id, translation_judge=True)
    assert _translated(client, derived) == []
    answer = httpx.get(
        f"{srv.base_url}/api/v1/datasets/{derived}/rejected",
        headers={"Authorization": f"Bearer {client.api_key}"},
    )
    assert answer.status_code == 200
    (rejected,) = [json.loads(line) for line in answer.text.splitlines()]
    assert rejected["step"] == "language_expansion"
    assert rejected["reason"] == REJECTED
    # Asked again naming the change; the judge saw the same translation twice (the second verdict may come
    # from the response cache, as any repeated request does).
    assert len(_translations(sim)) == 2
    assert CHANGE in _translations(sim)[1]
    assert _judged(sim)


def test_without_the_option_the_judge_is_not_asked(
    served: Any, source: tuple[adaption.Adaption, str]
) -> None:
    srv, sim, translator = served
    client, dataset_id = source
    translator.first = translator.second = WRONG_VERB
    derived = _translate(client, dataset_id)
    assert _translated(client, derived) == [WRONG_VERB]  # the number rule alone cannot see the change
    assert _judged(sim) == []
    assert _stored(srv, derived).options["translation_judge"] is False


def test_an_adaptation_that_translates_takes_the_option_too(
    served: Any, source: tuple[adaption.Adaption, str]
) -> None:
    srv, sim, translator = served
    client, dataset_id = source
    translator.first = translator.second = WRONG_VERB
    expansion = {"type": "translate", "languages": ["es"], "sample_rate": 1}
    body = {"recipe_specification": NO_RECIPES, "language_expansion": expansion, "translation_judge": True}
    client.datasets.adapt(dataset_id, column_mapping=MAPPING, extra_body=body)
    assert wait_done(client, dataset_id).status == "succeeded"
    rows = _rows(client, dataset_id)
    assert [r["original_prompt"] for r in rows] == [SOURCE]  # the changed translation was rejected
    assert _judged(sim)
    assert CHANGE in _translations(sim)[1]
    assert _stored(srv, dataset_id).options["translation_judge"] is True


@pytest.mark.parametrize("value", ["yes", 1])
def test_a_bad_value_is_refused_naming_the_field_before_anything_is_stored(
    served: Any, source: tuple[adaption.Adaption, str], value: object
) -> None:
    _, sim, _ = served
    client, dataset_id = source
    before = [d.dataset_id for d in client.datasets.list()]
    extra = {"translation_judge": value}
    with pytest.raises(adaption.BadRequestError) as translate:
        client.datasets.translate(dataset_id, sample_rate=1, languages=["es"], extra_body=extra)
    with pytest.raises(adaption.BadRequestError) as adapt:
        client.datasets.adapt(dataset_id, column_mapping=MAPPING, extra_body=extra)
    assert fields_of(translate.value) == fields_of(adapt.value) == ["translation_judge"]
    assert "must be a boolean" in str(translate.value.body)
    assert [d.dataset_id for d in client.datasets.list()] == before  # no derived dataset was made
    assert client.datasets.get(dataset_id).status != "running"  # no run was started
    assert sim.log.prompts() == []


def test_localize_refuses_the_option_naming_it(served: Any, source: tuple[adaption.Adaption, str]) -> None:
    _, sim, _ = served
    client, dataset_id = source
    before = [d.dataset_id for d in client.datasets.list()]
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.localize(
            dataset_id,
            sample_rate=1,
            pairs=[{"country": "MX", "language": "es"}],
            extra_body={"translation_judge": True},
        )
    assert fields_of(caught.value) == ["translation_judge"]
    assert "changes numbers, names and units on purpose" in str(caught.value.body)
    assert [d.dataset_id for d in client.datasets.list()] == before
    assert sim.log.prompts() == []
