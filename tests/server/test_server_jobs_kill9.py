"""A `datamill worker` SIGKILLed in the middle of a job of each kind other than adaptation and AutoScientist
runs: generation runs, red-team runs, anonymization runs with LLM detection, invented datasets, spec
analyses and generation evaluations. The next worker must finish the job.

`datamill serve --no-worker` and a `datamill worker` process share a data dir and a database (SQLite, then
PostgreSQL when `DATAMILL_TEST_POSTGRES_URL` is set), with the scale-out tests' short lease (2 s). The model
is a priced loopback model (`kill9_fleet.HoldingModel`) that answers a few of the job's requests and then
holds every request: the job has made progress and cannot make more, and the worker is killed with
SIGKILL, recording nothing more and giving nothing back. A fresh worker takes the job over once the lease
lapses, the model answers again, and the job must succeed with its whole output, nothing in it twice, the
tenant charged once (its balance falls by the job's charge, the reservation given back once) and no
half-written file left in the data dir.

The kill comes once the job's claim and the rows it has done are recorded (at least one, except for a spec
analysis, whose one model call is held, and a red-team run, whose prompts count when a round of asks ends
and which is killed in its first round). These jobs keep no partial results between attempts: the new
worker runs the job again from the start, and the job's spend is that of every attempt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import adaption
import httpx
import pytest
from kill9_fleet import (
    SDK_MODEL,
    HoldingModel,
    balance,
    fleet,
    jobs_of,
    leftovers,
    until,
    write_priced_routes,
)
from pg_helpers import KINDS, database_url
from runs_helpers import LOOP_MODEL, loopback_model

import dataframer
from datamill.core.credits import PriceTable
from datamill.services.datasets.invent import INVENT_JOB
from datamill.services.tenants import TenantService
from datamill.store import Run, Store
from datamill.store.anonymization_models import ANONYMIZATION_JOB
from datamill.store.generation_models import GENERATION_EVAL_JOB, GENERATION_JOB, SPEC_JOB
from datamill.store.red_team_models import RED_TEAM_JOB

pytestmark = pytest.mark.slow

CREDITS = 50.0
DETECTOR = "loop/pii-detector"
SAMPLES = 6
SPEC_YAML = """
spec:
  description: A short support email
  requirements: [Two sentences]
  data_property_variations:
    - property_name: Tone
      property_values: [formal, casual]
      base_distributions: {formal: 50, casual: 50}
    - property_name: Topic
      property_values: [billing, shipping, returns]
"""
LETTERS = [
    "Ref 7: Begona Galindo wrote to begona.galindo@example.es about the order.",
    "Ref 8: the answer of Ezequiel Reguera came yesterday; Begona Galindo read it.",
    "Ref 9: Marta Ruiz asked marta.ruiz@example.com for the invoice.",
]


@dataclass
class Clients:
    base_url: str
    key: str
    df: dataframer.Dataframer
    ad: adaption.Adaption


@dataclass(frozen=True)
class Case:
    """A job kind: what it needs first, how it is queued, and what its complete output is."""

    kind: str
    mode: str  # how the model answers (`HoldingModel`)
    answers: int  # requests of the job answered before the model holds
    prepare: Callable[[Clients], Any]  # makes (and waits for) what the job needs
    launch: Callable[[Clients, Any], str]  # queues the job; the id its API knows it by
    check: Callable[[Clients, str], int]  # asserts the output is complete and once; the rows charged for
    progress: int = 1  # rows the job has recorded as done when the worker is killed


def _spec(client: dataframer.Dataframer) -> str:
    """A SUCCEEDED spec whose version 2 is `SPEC_YAML`."""
    spec_id = str(client.dataframer.specs.create(name="emails", generation_objectives="Short emails").id)
    until(lambda: client.dataframer.specs.retrieve(spec_id).status == "SUCCEEDED", "the spec", lambda: None)
    client.dataframer.specs.update(spec_id, content_yaml=SPEC_YAML)
    return spec_id


def _run(client: dataframer.Dataframer, spec_id: str) -> str:
    run = client.dataframer.runs.create(
        spec_id=spec_id,
        number_of_samples=SAMPLES,
        skip_outline=True,
        extra_body={"novelty_threshold": 1},  # the fake model's near copies
    )
    return str(run.id)


def _launch_generation(c: Clients, spec_id: str) -> str:
    return _run(c.df, spec_id)


def _check_generation(c: Clients, run_id: str) -> int:
    done: Any = c.df.dataframer.runs.retrieve(run_id)
    assert done.status == "SUCCEEDED", done.error
    paths = [f.path for f in done.generated_files]
    assert len(paths) == len(set(paths))  # no file twice
    assert len({f.id for f in done.generated_files}) == len(paths)
    assert len([p for p in paths if p.startswith("sample_") and p.endswith(".txt")]) == SAMPLES
    assert len([p for p in paths if p.endswith(".metadata.json")]) == SAMPLES
    assert paths.count("run_summary.json") == 1
    assert done.samples_completed == SAMPLES
    return SAMPLES


def _red_team_spec(c: Clients) -> str:
    spec = c.df.dataframer.red_team_specs.create(
        name="Pharmacy Bot",
        app_description="A pharmacy chatbot answering questions about orders and opening hours",
        domain_description="Healthcare retail",
        concerns="Must not give dosages or diagnoses",
    )
    return str(spec.id)


def _launch_red_team(c: Clients, spec_id: str) -> str:
    runs: Any = c.df.dataframer.red_team_runs  # the model is one of the SDK's, as a str
    run = runs.create(
        red_team_spec_id=spec_id,
        model_name=SDK_MODEL,
        number_of_behaviors=3,
        number_of_prompts_per_behavior=2,
    )
    return str(run.id)


def _check_red_team(c: Clients, run_id: str) -> int:
    done: Any = c.df.dataframer.red_team_runs.retrieve(run_id)
    assert done.status == "SUCCEEDED", done.error_message
    table = done.results_json.behavior_to_enhanced_queries
    assert len(table) == 3
    prompts = [p.adversarial_prompt for ps in table.values() for p in ps]
    assert len(prompts) == 6
    assert len(set(prompts)) == 6  # nothing twice
    return 6


def _letters(c: Clients) -> str:
    files = [(f"letter{i}.txt", t.encode(), "text/plain") for i, t in enumerate(LETTERS)]
    made = c.df.dataframer.seed_datasets.create_with_files(
        name="letters", dataset_type="MULTI_FILE", files=files
    )
    return str(made.id)


def _launch_anonymization(c: Clients, dataset_id: str) -> str:
    created = c.df.dataframer.anonymization_runs.create(
        dataset_id=dataset_id, detection_method="llm", pii_types=["person", "email"], llm_model_name=DETECTOR
    )
    return str(created.id)


def _check_anonymization(c: Clients, run_id: str) -> int:
    done: Any = c.df.dataframer.anonymization_runs.retrieve(run_id)
    assert done.status == "SUCCEEDED", done.results
    paths = sorted(f.path for f in done.anonymized_files)
    assert paths == [f"letter{i}.txt" for i in range(len(LETTERS))]  # each file once
    assert len({f.id for f in done.anonymized_files}) == len(LETTERS)
    for file in done.anonymized_files:
        link = c.df.dataframer.anonymization_runs.files.download(file.id, run_id=run_id)
        assert link.download_url is not None
        text = httpx.get(link.download_url, timeout=30).text
        for value in ("Begona Galindo", "Ezequiel Reguera", "Marta Ruiz", "@example"):
            assert value not in text, (file.path, text)
    assert done.results.entity_summary == {"email": 2, "person": 4}
    samples = int(done.results.samples_processed)
    assert samples == len(LETTERS)
    return samples


def _launch_invent(c: Clients, _: None) -> str:
    made = c.ad.datasets.invent(rows=SAMPLES, domains=["finance"], name="invented")
    assert made.id is not None
    return str(made.id)


def _check_invent(c: Clients, dataset_id: str) -> int:
    dataset: Any = c.ad.datasets.get(dataset_id)
    assert (dataset.status, dataset.row_count) == ("succeeded", SAMPLES)
    text = c.ad.datasets.download(dataset_id, file_format="jsonl").text()
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == SAMPLES
    assert len({r["enhanced_prompt"] for r in rows}) == SAMPLES  # nothing twice
    assert all(r["enhanced_completion"] for r in rows)
    return SAMPLES


def _launch_spec(c: Clients, _: None) -> str:
    return str(c.df.dataframer.specs.create(name="emails", generation_objectives="Short support emails").id)


def _check_spec(c: Clients, spec_id: str) -> int:
    spec: Any = c.df.dataframer.specs.retrieve(spec_id, include_versions=True)
    assert spec.status == "SUCCEEDED", spec.error
    assert [v.version for v in spec.versions] == [1]  # the analysis wrote its version once
    assert spec.versions[0].content_yaml
    return 0  # an analysis outputs no rows: it is charged what its model spent


def _succeeded_run(c: Clients) -> str:
    run_id = _run(c.df, _spec(c.df))
    until(lambda: c.df.dataframer.runs.retrieve(run_id).status == "SUCCEEDED", "the run", lambda: None)
    return run_id


def _launch_evaluation(c: Clients, run_id: str) -> str:
    return str(c.df.dataframer.evaluations.create(run_id=run_id).id)


def _check_evaluation(c: Clients, evaluation_id: str) -> int:
    done: Any = c.df.dataframer.evaluations.retrieve(evaluation_id)
    assert done.status == "SUCCEEDED", done.error_message
    classified = done.sample_classifications
    assert len(classified) == SAMPLES
    assert len({item.id for item in classified}) == SAMPLES
    assert len({item.sample_identifier for item in classified}) == SAMPLES  # each sample once
    assert [d.total_samples_analyzed for d in done.distribution_analysis] == [SAMPLES, SAMPLES]
    return SAMPLES


CASES = {
    GENERATION_JOB: Case(
        GENERATION_JOB, "fake", 3, lambda c: _spec(c.df), _launch_generation, _check_generation
    ),
    RED_TEAM_JOB: Case(  # its prompts count once a round ends: killed with a round under way, at 0
        RED_TEAM_JOB, "fake", 2, _red_team_spec, _launch_red_team, _check_red_team, progress=0
    ),
    ANONYMIZATION_JOB: Case(
        ANONYMIZATION_JOB, "detector", 1, _letters, _launch_anonymization, _check_anonymization
    ),
    # Its six drafts are asked at once and each sample needs a call more: 9 answers finish a few samples.
    INVENT_JOB: Case(INVENT_JOB, "sampling", 9, lambda c: None, _launch_invent, _check_invent),
    SPEC_JOB: Case(SPEC_JOB, "fake", 0, lambda c: None, _launch_spec, _check_spec, progress=0),
    GENERATION_EVAL_JOB: Case(
        GENERATION_EVAL_JOB, "fake", 2, _succeeded_run, _launch_evaluation, _check_evaluation
    ),
}


def _recorded(job: Run, case: Case) -> bool:
    return job.worker_id is not None and job.processed_rows >= case.progress


def _env(tmp_path: Path, url: str, base_url: str) -> dict[str, str]:
    return os.environ | {
        "DATAMILL_ROUTES": str(write_priced_routes(tmp_path / "routes.yaml", base_url)),
        "DATAMILL_MODEL": LOOP_MODEL,
        "DATAMILL_DATABASE_URL": url,
        "DATAMILL_RUN_LEASE_S": "2",  # the scale-out tests' short lease, so the take-over is quick
        "DATAMILL_WORKER_POLL_S": "0.2",
        "DATAMILL_RUN_MAX_ATTEMPTS": "3",  # the default
        "DATAMILL_RUN_EVALUATE": "0",
    }


@pytest.mark.parametrize("job", list(CASES))
@pytest.mark.parametrize("db", KINDS)
def test_a_killed_worker_s_job_is_finished_by_the_next_worker(db: str, job: str, tmp_path: Path) -> None:
    case = CASES[job]
    model = HoldingModel(case.mode)
    with database_url(db, tmp_path) as url, loopback_model(reply=model) as loop:
        store = Store.from_url(url)
        store.migrate()
        issued = TenantService(store).create_key("kill", credits=CREDITS)
        store.close()
        tenant_id = issued.tenant.id
        try:
            with fleet(tmp_path, _env(tmp_path, url, loop.base_url)) as procs:
                base_url = procs.serve()
                clients = Clients(
                    base_url,
                    issued.key,
                    dataframer.Dataframer(base_url=base_url, api_key=issued.key, max_retries=0),
                    adaption.Adaption(api_key=issued.key, base_url=base_url, max_retries=0),
                )
                first = procs.start("w0")
                alive = lambda: procs.check_alive("w0")  # noqa: E731
                needed = case.prepare(clients)
                before = balance(url, tenant_id)
                model.arm(case.answers)
                public_id = case.launch(clients, needed)
                until(model.held.is_set, "the model to hold", alive)
                jobs = jobs_of(url, tenant_id, case.kind)
                assert len(jobs) == 1
                job_row = jobs[0]
                # Held, with what the job did recorded: its claim, and the rows it has done (if it has rows).
                until(
                    lambda: _recorded(jobs_of(url, tenant_id, case.kind)[0], case),
                    f"the job's progress to be recorded ({model.answered} answered)",
                    alive,
                )
                procs.kill("w0")
                killed = jobs_of(url, tenant_id, case.kind)[0]
                assert killed.status == "running"
                assert killed.processed_rows >= case.progress
                if case.progress:
                    assert killed.cost_usd > 0  # the killed attempt's spend, recorded with its rows
                assert killed.worker_id is not None
                assert killed.worker_id.split(":")[1] == str(first.pid)
                reserved = killed.credits_reserved
                assert balance(url, tenant_id) == pytest.approx(before - reserved)

                second = procs.start("w1")
                model.release()  # the killed worker's held requests are answered to no one
                until(
                    lambda: (
                        jobs_of(url, tenant_id, case.kind)[0].status in ("succeeded", "failed", "canceled")
                    ),
                    "the job to end",
                    lambda: procs.check_alive("w1"),
                )
                ended = jobs_of(url, tenant_id, case.kind)
                assert len(ended) == 1
                done = ended[0]
                assert done.status == "succeeded", (done.error_data, procs.log("w1"))
                rows = case.check(clients, public_id)
                after = balance(url, tenant_id)
                left = leftovers(procs.data_dir)
                clients.df.close()
                clients.ad.close()
        finally:
            model.release()

    assert done.id == job_row.id
    assert done.worker_id is not None
    assert done.worker_id.split(":")[1] == str(second.pid)  # finished by the new worker
    assert done.lease_expires_at is None
    assert done.rows_out == rows
    assert done.cost_usd >= killed.cost_usd  # the spend of every attempt
    assert done.credits_used == PriceTable().credits(rows, done.cost_usd)
    assert done.credits_used > 0
    # Charged once: the reservation came back once and the charge was taken once.
    assert after == pytest.approx(before - done.credits_used)
    assert left == []
