"""Schemathesis fuzzing of the Dataframer-compatible API, against real resources: no 5xx, ever.

A server of its own (the fake models, a worker) holds one tenant's finished seed dataset, spec, run and
evaluation. Every ``/api/dataframer`` operation of ``/openapi.json`` then gets generated requests
(valid and invalid bodies, odd query values) with that tenant's key; the path parameters are, one time in
two, the ids of the real resources, so that the requests reach past the lookup into the handlers (DELETE
always gets generated ids, so that the resources survive the run). Every answer must be something other
than a server error, and every success must match the response model the route declares.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import httpx
import hypothesis
import pytest
import schemathesis
from anon_helpers import wait_anonymization
from df_waits import wait_run, wait_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

import dataframer
from conftest import FAKE_MODEL, RunningServer, running_server, write_fake_routes
from datamill.server.context import ServerContext
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings

#: Examples per operation; ``DATAMILL_FUZZ_EXAMPLES=200`` runs a deeper search locally.
EXAMPLES = int(os.environ.get("DATAMILL_FUZZ_EXAMPLES", "25"))
PREFIX = "/api/dataframer"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server of its own, so that the runs the fuzzer launches keep no other test's worker busy."""
    data_dir = tmp_path_factory.mktemp("df-fuzz")
    routes = write_fake_routes(data_dir / "routes.yaml")
    runs = RunSettings(model=FAKE_MODEL, routes_path=routes, batch_size=4, poll_s=0.1, eval_sample_size=4)
    settings = ServerSettings.for_data_dir(data_dir, rate_limit_per_minute=0)
    with running_server(settings, context=ServerContext.build(settings, runs=runs)) as running:
        yield running


def _real_ids(server: RunningServer, key: str) -> dict[str, str]:
    with dataframer.Dataframer(base_url=server.base_url, api_key=key, max_retries=0) as sdk:
        api = sdk.dataframer
        seeds = [(f"s{i}.txt", f"support message {i}".encode(), "text/plain") for i in range(3)]
        dataset = api.seed_datasets.create_with_files(name="fuzz", dataset_type="MULTI_FILE", files=seeds)
        spec = wait_spec(sdk, api.specs.create(name="fuzz", dataset_id=dataset.id).id)
        assert spec.status == "SUCCEEDED", spec.error
        run = wait_run(
            sdk, api.runs.create(spec_id=spec.id, number_of_samples=2, extra_body={"novelty_threshold": 1}).id
        )
        assert run.status == "SUCCEEDED", run.error
        evaluation = api.evaluations.create(run_id=run.id)
        red_spec = api.red_team_specs.create(
            name="fuzz", app_description="A bot", domain_description="Retail"
        )
        red_run = api.red_team_runs.create(
            red_team_spec_id=red_spec.id,
            model_name="openai/gpt-oss-120b",
            number_of_behaviors=1,
            number_of_prompts_per_behavior=1,
        )
        judge = sdk.post(
            "/api/dataframer/judges/", body={"name": "fuzz", "rubric": "Polite."}, cast_to=httpx.Response
        ).json()
        judged = api.judges.evaluations.create(judge["id"], input="q", output="a")
        created = api.anonymization_runs.create(
            dataset_id=dataset.id, detection_method="pii_m1", pii_types=["person", "email"]
        )
        anonymization = wait_anonymization(sdk, created.id)
        assert anonymization.status == "SUCCEEDED", anonymization.results
    return {
        "judge_id": judge["id"],
        "judge_evaluation_id": judged.id,
        "failure_id": f"fail_judge_{judged.id}",
        "red_team_spec_id": red_spec.id,
        "red_team_run_id": red_run.id,
        "dataset_id": dataset.id,
        "spec_id": spec.id,
        "run_id": run.id,
        "evaluation_id": evaluation.id,
        "file_id": run.generated_files[0].id,
        "anonymization_run_id": anonymization.id,
        "anonymized_file_id": anonymization.anonymized_files[0].id,
    }


def _ids_for(path: str, ids: dict[str, str]) -> dict[str, str]:
    """The real ids by path parameter (under /anonymization-runs/, run_id and file_id are its own)."""
    if "/anonymization-runs/" in path:
        return ids | {"run_id": ids["anonymization_run_id"], "file_id": ids["anonymized_file_id"]}
    return ids


def test_no_dataframer_operation_answers_a_server_error(fuzz_server: RunningServer) -> None:
    key = fuzz_server.new_key("fuzzer")
    ids = _real_ids(fuzz_server, key)
    red_team_ids = {"spec_id": ids["red_team_spec_id"], "run_id": ids["red_team_run_id"]}
    schema = schemathesis.openapi.from_url(f"{fuzz_server.base_url}/openapi.json")
    operations = [result.ok() for result in schema.include(path_regex=f"^{PREFIX}/").get_all_operations()]
    assert len(operations) > 20
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    checked: Counter[str] = Counter()

    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.generate],
        )
        @given(case=operation.as_strategy(), real=st.booleans())  # type: ignore[attr-defined]
        def check(case: schemathesis.Case, real: bool) -> None:
            if real and case.method != "DELETE" and case.path_parameters:
                real_ids = ids | (red_team_ids if "/red-team-" in case.path else {})
                real_ids |= {"evaluation_id": ids["judge_evaluation_id"]} if "/judges/" in case.path else {}
                real_ids = _ids_for(case.path, real_ids)
                case.path_parameters = {k: real_ids.get(k, v) for k, v in case.path_parameters.items()}
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}
            response = case.call(timeout=30)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}\n"
                    f"  body={case.body!r:.300} query={case.query!r:.200}"
                )
            elif response.status_code < 300:
                try:
                    case.validate_response(response, checks=[response_schema_conformance])
                except (AssertionError, FailureGroup) as mismatch:
                    failures.append(
                        f"{case.method} {case.formatted_path}: body off its schema: {mismatch}"[:600]
                    )
                checked["bodies"] += 1

        check()

    assert not failures, "\n".join(failures[:20])
    print(f"{len(operations)} operations, statuses: {dict(sorted(statuses.items()))}")
    assert statuses[200] > 0  # the real resources were reached ...
    assert statuses[400] > 0  # ... and bad input was refused as such
    assert checked["bodies"] > 0  # successes were checked against their schemas


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _valid_bodies(ids: dict[str, str], spec_yaml: str) -> dict[tuple[str, str], dict[str, object]]:
    """A body each creating or updating operation accepts as it is: the starting points of the mutations."""
    return {
        ("POST", f"{PREFIX}/specs/"): {
            "name": "mutant",
            "dataset_id": ids["dataset_id"],
            "generate_distributions": True,
            "extrapolate_values": False,
            "spec_generation_model_name": "anthropic/claude-sonnet-5-5-thinking",
        },
        ("PUT", f"{PREFIX}/specs/{ids['spec_id']}/"): {"content_yaml": spec_yaml},
        ("POST", f"{PREFIX}/runs/"): {
            "spec_id": ids["spec_id"],
            "number_of_samples": 1,
            "revision_types": ["consistency"],
            "filtering_types": ["structural"],
            "max_revision_cycles": 1,
            "spec_version": 1,
        },
        ("POST", f"{PREFIX}/evaluations/"): {"run_id": ids["run_id"]},
        ("POST", f"{PREFIX}/red-team-specs/"): {
            "name": "mutant",
            "app_description": "A support bot",
            "domain_description": "Retail",
            "concerns": "No refunds promised",
        },
        ("PATCH", f"{PREFIX}/red-team-specs/{ids['red_team_spec_id']}/"): {"concerns": "Refunds"},
        ("POST", f"{PREFIX}/judges/"): {
            "name": "mutant",
            "rubric": "Polite and correct.",
            "dimensions": [{"name": "tone"}, {"name": "correct", "scoring_model": "pass_fail"}],
        },
        ("PATCH", f"{PREFIX}/judges/{ids['judge_id']}/"): {"rubric": "Kind.", "description": "d"},
        ("POST", f"{PREFIX}/judges/{ids['judge_id']}/evaluations/"): {
            "messages": [{"role": "user", "content": "hi"}],
            "output": "hello",
            "name": "greet",
            "metadata": {"k": "v"},
        },
        ("POST", f"{PREFIX}/red-team-runs/"): {
            "red_team_spec_id": ids["red_team_spec_id"],
            "model_name": "openai/gpt-oss-120b",
            "number_of_behaviors": 1,
            "number_of_prompts_per_behavior": 1,
        },
        ("POST", f"{PREFIX}/anonymization-runs/"): {
            "dataset_id": ids["dataset_id"],
            "detection_method": "pii_m1",
            "pii_types": ["person", "email"],
            "mask_config": {"email": "<EMAIL {n}>"},
            "threshold": 0.5,
        },
    }


def _mutate(http: httpx.Client, method: str, path: str, body: dict[str, object]) -> Counter[int | str]:
    """Send `body` with one field (or a new one) set to generated JSON; the statuses, and each 5xx seen."""
    seen: Counter[int | str] = Counter()

    @settings(max_examples=EXAMPLES * 2, deadline=None, database=None, phases=[hypothesis.Phase.generate])
    @given(field=st.sampled_from([*body, "extra"]), value=_JSON)
    def check(field: str, value: object) -> None:
        answer = http.request(method, path, json={**body, field: value})
        seen[answer.status_code] += 1
        if answer.status_code >= 500:
            seen[f"{method} {path} {field}={value!r:.200} -> {answer.text[:300]}"] += 1
        elif answer.status_code == 201 and path.endswith("/anonymization-runs/"):
            http.delete(f"{path}{answer.json()['id']}/")  # stops its job too
        elif answer.status_code == 201 and path.endswith("runs/"):
            http.post(f"{path}{answer.json()['id']}/cancel/")  # keep the worker free
        elif answer.status_code == 201 and path.endswith(("red-team-specs/", "/judges/")):
            http.delete(f"{path}{answer.json()['id']}/")  # free the name for the next mutation

    check()
    return seen


def test_valid_bodies_with_one_field_changed_never_answer_a_server_error(fuzz_server: RunningServer) -> None:
    """Each field of a valid body (or a new one) set to any JSON value: a 4xx, or success; never a 5xx."""
    key = fuzz_server.new_key("mutator")
    ids = _real_ids(fuzz_server, key)
    with dataframer.Dataframer(base_url=fuzz_server.base_url, api_key=key, max_retries=0) as sdk:
        spec_yaml = sdk.dataframer.specs.retrieve(ids["spec_id"]).content_yaml
    seen: Counter[int | str] = Counter()
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=fuzz_server.base_url, headers=headers, timeout=30) as http:
        for (method, path), body in _valid_bodies(ids, spec_yaml).items():
            assert http.request(method, path, json=body).status_code < 300, (method, path)
            seen += _mutate(http, method, path, body)
    failures = [str(found) for found in seen if isinstance(found, str)]
    assert not failures, "\n".join(failures[:20])
    assert seen[400] > 0
    assert seen[200] + seen[201] > 0
