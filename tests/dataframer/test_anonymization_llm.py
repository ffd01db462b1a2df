"""Anonymization runs with ``llm`` and ``all`` detection through the SDK, the model behind the simulator.

The simulator plays a detection model (`_detector`): it reads the passages of each request and names, for
each, the emails and the capitalised word pairs it holds (as a model names people), plus one entity that is
not in the text and one for a passage that does not exist, as models invent things. The run must mask what
was named and is in the text, drop the inventions (counted in ``llm_entities_dropped``), get through the
provider's quirks (fenced or prose-wrapped JSON, reasoning, refusals retried by the gateway), and fail with
a clear error, writing no file, when the model keeps refusing.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from anon_helpers import fetched_texts, wait_anonymization

import dataframer
from conftest import RunningServer, running_server
from datamill.llm.simulator import ProviderSimulator, WireRequest, serve_in_thread
from datamill.server.context import ServerContext
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings

MODEL = "sim-openai/pii-detector"
INVENTED = "Jane Invented-Person"
_PASSAGE = re.compile(r'<passage number="(\d+)">\n(.*?)\n</passage>', re.DOTALL)


def _detector(request: WireRequest) -> str:
    """What the simulated model answers: see the module docstring."""
    prompt = request.turns[-1][1] if request.turns else ""
    entities: list[dict[str, Any]] = []
    passages = _PASSAGE.findall(prompt)
    for number, text in passages:
        for email in re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", text):
            entities.append({"passage": int(number), "text": email, "label": "email", "score": 0.97})
        for name in re.findall(r"\b[A-ZÁÉÍÓÚÑ][a-záéíóúñ]+ [A-ZÁÉÍÓÚÑ][a-záéíóúñ]+\b", text):
            entities.append({"passage": int(number), "text": name, "label": "person", "score": 0.9})
    entities.append({"passage": 1, "text": INVENTED, "label": "person", "score": 0.99})
    entities.append({"passage": len(passages) + 5, "text": "x", "label": "person", "score": 0.99})
    return json.dumps({"entities": entities})


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with serve_in_thread(seed=3, retry_after_s=0.05, responder=_detector) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def llm_server(sim: ProviderSimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("anon-llm")
    routes = sim.write_routes(data_dir / "routes.yaml")
    runs = RunSettings(model=MODEL, routes_path=routes, poll_s=0.05)
    settings = ServerSettings.for_data_dir(data_dir)
    with running_server(settings, context=ServerContext.build(settings, runs=runs)) as server:
        yield server


@pytest.fixture
def sdk(llm_server: RunningServer) -> Iterator[dataframer.Dataframer]:
    key = llm_server.new_key(f"anon-llm-{secrets.token_hex(3)}")
    client = dataframer.Dataframer(base_url=llm_server.base_url, api_key=key, max_retries=0)
    yield client
    client.close()


def _letters(client: dataframer.Dataframer, texts: list[str]) -> Any:
    files = [(f"letter{i}.txt", t.encode(), "text/plain") for i, t in enumerate(texts)]
    name = f"letters-{secrets.token_hex(3)}"
    return client.dataframer.seed_datasets.create_with_files(
        name=name, dataset_type="MULTI_FILE", files=files
    )


def _anonymize(client: dataframer.Dataframer, dataset_id: str, method: str = "llm") -> Any:
    created = client.dataframer.anonymization_runs.create(
        dataset_id=dataset_id, detection_method=method, pii_types=["person", "email"], llm_model_name=MODEL
    )
    assert created.llm_model_name == MODEL
    return wait_anonymization(client, created.id)


def _tag(test: int) -> str:
    """A reference number of its own per test, so that no answer comes from the gateway's response cache.

    It is fixed, not random: the simulator draws its quirks from a digest of the request, so the same
    letters meet the same quirks on every run (and a hex tag such as ``73e409f3`` was read as a name).
    """
    return f"40{test:02d}17"


def _texts(tag: str) -> list[str]:
    """Letters unique to a test, so that no answer comes from the gateway's response cache."""
    return [
        f"Ref {tag}: Begoña Galindo escribió a begona.galindo@example.es sobre el pedido.",
        f"Ref {tag}: la respuesta de Ezequiel Reguera llegó ayer; Begoña Galindo la leyó.",
    ]


def test_llm_detection_masks_what_the_model_found_and_drops_inventions(
    sdk: dataframer.Dataframer, sim: ProviderSimulator
) -> None:
    sim.set_rates()
    before = len(sim.log)
    texts = _texts(_tag(1))
    run = _anonymize(sdk, _letters(sdk, texts).id)
    assert run.status == "SUCCEEDED", run.results
    calls = [e for e in list(sim.log)[before:] if e.status == 200]
    assert calls, "the model was never asked"
    assert all(MODEL.split("/", 1)[1] in e.model for e in calls)
    assert any("Ezequiel Reguera" in e.prompt for e in calls)  # the text reached the model
    out = fetched_texts(sdk, run)
    for value in ("Begoña Galindo", "Ezequiel Reguera", "begona.galindo@example.es"):
        assert all(value not in t for t in out.values()), value
    assert "<PERSON_1>" in out["letter1.txt"]  # the same person, the same placeholder in that file
    assert run.results.entity_summary == {"email": 1, "person": 3}
    assert run.results.llm_entities_dropped == 2 * len(calls)  # the invented name and passage, per call
    assert all(INVENTED not in t for t in out.values())


def test_all_merges_the_model_and_the_rules(sdk: dataframer.Dataframer, sim: ProviderSimulator) -> None:
    sim.set_rates()
    tag = _tag(2)
    texts = [f"Ref {tag}: card 4111 1111 1111 1111 of Begoña Galindo, mail begona@example.es."]
    dataset = _letters(sdk, [*texts, f"Ref {tag}: nothing personal here."])
    created = sdk.dataframer.anonymization_runs.create(
        dataset_id=dataset.id,
        detection_method="all",
        pii_types=["person", "email", "credit_card"],
        llm_model_name=MODEL,
    )
    run = wait_anonymization(sdk, created.id)
    assert run.status == "SUCCEEDED", run.results
    out = fetched_texts(sdk, run)["letter0.txt"]
    assert out == f"Ref {tag}: card <CREDIT_CARD_1> of <PERSON_1>, mail <EMAIL_1>."
    assert run.results.entity_summary == {"credit_card": 1, "email": 1, "person": 1}


def test_provider_quirks_are_handled_by_the_gateway(
    sdk: dataframer.Dataframer, sim: ProviderSimulator
) -> None:
    sim.set_rates(json_fence=0.3, prose_json=0.3, think=0.2, refusal_text=0.1)
    try:
        texts = _texts(_tag(3)) * 3
        run = _anonymize(sdk, _letters(sdk, texts).id)
    finally:
        sim.set_rates()
    assert run.status == "SUCCEEDED", run.results
    for text in fetched_texts(sdk, run).values():
        assert "Begoña Galindo" not in text
        assert "```" not in text
        assert "<think>" not in text


def test_a_model_that_keeps_refusing_fails_the_run_with_no_file(
    sdk: dataframer.Dataframer, sim: ProviderSimulator
) -> None:
    sim.set_rates(refusal_text=1.0)
    try:
        run = _anonymize(sdk, _letters(sdk, _texts(_tag(4))).id)
    finally:
        sim.set_rates()
    assert run.status == "FAILED"
    assert run.anonymized_files == []
    assert "could not look for personal data" in run.results.error
    assert "refus" in run.results.error.lower()
    with pytest.raises(dataframer.BadRequestError):
        sdk.dataframer.anonymization_runs.files.download_all(run.id)
    failures = [f for f in sdk.dataframer.failures.list().results if run.id in f.name]
    assert [f.description for f in failures] == [run.results.error]  # the failed run is a failure ...
    sdk.dataframer.anonymization_runs.delete(run.id)
    assert not [f for f in sdk.dataframer.failures.list().results if run.id in f.name]  # ... until deleted
