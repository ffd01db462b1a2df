"""Tenancy of the Dataframer-compatible API, walked from the app's route table.

Tenant A makes one of everything through the official SDK (a seed dataset with files, a seeded spec, a
finished run with generated files, an evaluation of it); tenant B then calls every ``/api/dataframer``
route with A's ids in the path (alone and mixed with B's own) or in the body, and must get 404 every time
with nothing of A's in the answer. A route added later is walked too and fails here until its ids and body
are described below. The lists B sees hold only B's things, A's things are untouched afterwards, and a
signed download link of one tenant cannot be turned into a link to the other's file.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from anon_helpers import wait_anonymization
from df_waits import wait_run, wait_spec

import dataframer
from conftest import RunningServer
from datamill.server import create_app
from datamill.server.downloads_signed import sign_download, verify_download
from datamill.server.signing import DOWNLOAD, LinkSigner, load_or_create_secret
from datamill.services.generation.common import DownloadTarget
from route_walk import api_routes, fill, id_variants, path_params

PREFIX = "/api/dataframer"
MARKER = f"secret-of-a-{secrets.token_hex(4)}"

#: Path parameters that name no resource datamill keeps: any id is a 404.
NOTHING_KEPT: dict[str, str] = {}


@dataclass
class Tenant:
    """One tenant's key, SDK client and the ids of what it made."""

    key: str
    sdk: dataframer.Dataframer
    ids: dict[str, str]
    seed_file_id: str
    run_file_id: str
    spec_yaml: str
    links: list[str] = field(default_factory=list)
    anonymized_file_id: str = ""

    def ids_for(self, path: str) -> dict[str, str]:
        """Its ids by path parameter; ``file_id`` is a seed file's or a generated file's, as the path says,
        and ``spec_id`` and ``run_id`` are a red-team spec's and run's under the red-team paths."""
        file_id = self.seed_file_id if "/seed-datasets/" in path else self.run_file_id
        red_team = {"spec_id": self.ids["red_team_spec_id"], "run_id": self.ids["red_team_run_id"]}
        judges = {"evaluation_id": self.ids["judge_evaluation_id"]}
        # under the anonymization paths, run_id and file_id are an anonymization run's and its file's
        anonymization = {"run_id": self.ids["anonymization_run_id"], "file_id": self.anonymized_file_id}
        return (
            self.ids
            | NOTHING_KEPT
            | {"file_id": file_id}
            | (red_team if "/red-team-" in path else {})
            | (judges if "/judges/" in path else {})
            | (anonymization if "/anonymization-runs/" in path else {})
        )


def _make_tenant(server: RunningServer, name: str) -> Tenant:
    key = server.new_key(f"{name}-{secrets.token_hex(3)}")
    sdk = dataframer.Dataframer(base_url=server.base_url, api_key=key, max_retries=0)
    seeds = [(f"{name}{i}.txt", f"{MARKER} message {i} of {name}".encode(), "text/plain") for i in range(3)]
    dataset = sdk.dataframer.seed_datasets.create_with_files(
        name=f"{MARKER}-{name}", dataset_type="MULTI_FILE", files=seeds
    )
    spec = sdk.dataframer.specs.create(name=f"{MARKER}-{name}", dataset_id=dataset.id)
    done_spec = wait_spec(sdk, spec.id)
    assert done_spec.status == "SUCCEEDED", done_spec.error
    run = sdk.dataframer.runs.create(
        spec_id=spec.id, number_of_samples=2, extra_body={"novelty_threshold": 1}
    )  # the fake's copies
    finished = wait_run(sdk, run.id)
    assert finished.status == "SUCCEEDED", finished.error
    evaluation = sdk.dataframer.evaluations.create(run_id=run.id)
    red_spec = sdk.dataframer.red_team_specs.create(
        name=f"{MARKER}-{name}", app_description=MARKER, domain_description=MARKER, concerns=MARKER
    )
    red_run = sdk.dataframer.red_team_runs.create(
        red_team_spec_id=red_spec.id,
        model_name="openai/gpt-oss-120b",
        number_of_behaviors=1,
        number_of_prompts_per_behavior=1,
    )
    deadline = time.monotonic() + 60
    while sdk.dataframer.red_team_runs.retrieve_status(red_run.id).status != "SUCCEEDED":
        assert time.monotonic() < deadline, "the red-team run did not succeed"
        time.sleep(0.05)
    judge = sdk.post(
        "/api/dataframer/judges/", body={"name": MARKER, "rubric": MARKER}, cast_to=httpx.Response
    ).json()
    judged = sdk.dataframer.judges.evaluations.create(judge["id"], input=MARKER, output=MARKER)
    ids = {
        "judge_id": judge["id"],
        "judge_evaluation_id": judged.id,
        "failure_id": f"fail_judge_{judged.id}",  # the fake judge fails every answer
        "dataset_id": dataset.id,
        "spec_id": spec.id,
        "run_id": run.id,
        "evaluation_id": evaluation.id,
        "red_team_spec_id": red_spec.id,
        "red_team_run_id": red_run.id,
    }
    anonymization = sdk.dataframer.anonymization_runs.create(
        dataset_id=dataset.id, detection_method="pii_m1", pii_types=["person"]
    )
    anonymized = wait_anonymization(sdk, anonymization.id)
    assert anonymized.status == "SUCCEEDED", anonymized.results
    ids["anonymization_run_id"] = anonymization.id
    tenant = Tenant(
        key, sdk, ids, dataset.files[0].id, finished.generated_files[0].id, done_spec.content_yaml
    )
    tenant.anonymized_file_id = anonymized.anonymized_files[0].id
    anonymized_link = sdk.dataframer.anonymization_runs.files.download(
        tenant.anonymized_file_id, run_id=anonymization.id
    )
    tenant.links = [
        sdk.dataframer.seed_datasets.files.download(tenant.seed_file_id, dataset_id=dataset.id).download_url,
        sdk.dataframer.runs.files.download(tenant.run_file_id, run_id=run.id).download_url,
        str(anonymized_link.download_url),
    ]
    return tenant


@dataclass
class World:
    server: RunningServer
    a: Tenant
    b: Tenant


@pytest.fixture(scope="module")
def world(df_server: RunningServer) -> Iterator[World]:
    a, b = _make_tenant(df_server, "a"), _make_tenant(df_server, "b")
    yield World(df_server, a, b)
    a.sdk.close()
    b.sdk.close()


#: Bodies of the routes with ids in their path: valid, so that the tenant check is what answers.
PATH_BODIES: dict[tuple[str, str], Callable[[World], dict[str, Any]]] = {
    ("PUT", "/api/dataframer/specs/{spec_id}/"): lambda w: {"content_yaml": w.b.spec_yaml},
    ("POST", "/api/dataframer/runs/{run_id}/cancel/"): lambda _w: {},
    ("POST", "/api/dataframer/judges/{judge_id}/evaluations/"): lambda w: {"run_id": w.b.ids["run_id"]},
    ("PATCH", "/api/dataframer/red-team-specs/{spec_id}/"): lambda _w: {"concerns": "changed by b"},
    ("PATCH", "/api/dataframer/judges/{judge_id}/"): lambda _w: {"rubric": "changed by b"},
    ("POST", "/api/dataframer/red-team-runs/{run_id}/cancel/"): lambda _w: {},
}

#: Routes without ids in their path whose body carries them: B's body with A's ids.
IDS_IN_BODY: dict[tuple[str, str], Callable[[World], dict[str, Any]]] = {
    ("POST", "/api/dataframer/specs/"): lambda w: {"name": "b-spec", "dataset_id": w.a.ids["dataset_id"]},
    ("POST", "/api/dataframer/runs/"): lambda w: {"spec_id": w.a.ids["spec_id"], "number_of_samples": 1},
    ("POST", "/api/dataframer/evaluations/"): lambda w: {"run_id": w.a.ids["run_id"]},
    ("POST", "/api/dataframer/red-team-runs/"): lambda w: {
        "red_team_spec_id": w.a.ids["red_team_spec_id"],
        "model_name": "openai/gpt-oss-120b",
        "number_of_behaviors": 1,
        "number_of_prompts_per_behavior": 1,
    },
    ("POST", "/api/dataframer/anonymization-runs/"): lambda w: {
        "dataset_id": w.a.ids["dataset_id"],
        "detection_method": "pii_m1",
        "pii_types": ["email"],
    },
}

#: Routes that take no tenant-owned id: the lists must hold only B's things; the creations are B's own.
NO_TENANT_IDS = {
    ("GET", "/api/dataframer/seed-datasets/"),
    ("GET", "/api/dataframer/specs/"),
    ("GET", "/api/dataframer/runs/"),
    ("GET", "/api/dataframer/anonymization-runs/"),
    ("GET", "/api/dataframer/failures/"),
    ("GET", "/api/dataframer/context/"),
    ("GET", "/api/dataframer/judges/"),
    ("GET", "/api/dataframer/red-team-specs/"),
    ("GET", "/api/dataframer/red-team-runs/"),
    ("POST", "/api/dataframer/red-team-specs/"),
    ("POST", "/api/dataframer/judges/"),
    ("POST", "/api/dataframer/seed-datasets/create/"),
    ("POST", "/api/dataframer/seed-datasets/create-from-zip/"),
}


def _refusal_problem(answer: httpx.Response, what: str) -> str | None:
    if answer.status_code != 404:
        return f"{what}: {answer.status_code} {answer.text[:300]}"
    if answer.json().get("code") != "not_found":
        return f"{what}: a 404 not in the Dataframer error shape: {answer.text[:300]}"
    return f"{what} shows A's data" if MARKER in answer.text else None


def _walk_route(http: httpx.Client, w: World, method: str, path: str) -> list[str | None]:
    """Call one route as B with A's ids; the problems found (None for each call that was refused)."""
    params = path_params(path)
    if params:
        theirs, mine = w.a.ids_for(path), w.b.ids_for(path)
        if unknown := set(params) - theirs.keys():
            return [f"{method} {path}: make tenant A own a {sorted(unknown)} in this test"]
        if (method, path) not in PATH_BODIES and method not in ("GET", "DELETE"):
            return [f"{method} {path}: give it a valid body in PATH_BODIES"]
        body = PATH_BODIES[(method, path)](w) if (method, path) in PATH_BODIES else None
        urls = [fill(path, ids) for ids in id_variants(params, theirs, mine)]
        return [_refusal_problem(http.request(method, url, json=body), f"{method} {url}") for url in urls]
    if (method, path) in IDS_IN_BODY:
        answer = http.request(method, path, json=IDS_IN_BODY[(method, path)](w))
        return [_refusal_problem(answer, f"{method} {path}")]
    if (method, path) not in NO_TENANT_IDS:
        return [f"{method} {path} is not covered: list it in IDS_IN_BODY (with A's ids) or NO_TENANT_IDS"]
    if method == "GET":  # a list: only B's own
        answer = http.get(path)
        leaked = answer.status_code != 200 or any(i in answer.text for i in w.a.ids.values())
        return [f"GET {path} shows A's things: {answer.text[:300]}" if leaked else None]
    return []


@pytest.fixture(scope="module")
def walk(world: World) -> list[str | None]:
    """B walks every route of the API once; one entry per call (a problem, or None)."""
    routes = api_routes(create_app(context=world.server.context), PREFIX)
    assert len(routes) > 20
    headers = {"Authorization": f"Bearer {world.b.key}"}
    with httpx.Client(base_url=world.server.base_url, headers=headers, timeout=30) as http:
        return [found for method, path in routes for found in _walk_route(http, world, method, path)]


def test_every_route_refuses_another_tenants_ids(walk: list[str | None]) -> None:
    problems = [problem for problem in walk if problem]
    assert not problems, "\n".join(problems)
    assert len(walk) >= 30


def test_b_lists_only_its_own(world: World, walk: list[str | None]) -> None:
    api = world.b.sdk.dataframer
    assert [d.id for d in api.seed_datasets.list()] == [world.b.ids["dataset_id"]]
    assert {s.id for s in api.specs.list()} == {world.b.ids["spec_id"]}
    assert {r.id for r in api.runs.list()} == {world.b.ids["run_id"]}
    assert [s.id for s in api.red_team_specs.list()] == [world.b.ids["red_team_spec_id"]]
    assert [r.id for r in api.red_team_runs.list()] == [world.b.ids["red_team_run_id"]]
    assert [j.id for j in api.judges.list().results] == [world.b.ids["judge_id"]]
    assert [r.id for r in api.anonymization_runs.list()] == [world.b.ids["anonymization_run_id"]]


def test_a_things_are_untouched_after_the_walk(world: World, walk: list[str | None]) -> None:
    api, ids = world.a.sdk.dataframer, world.a.ids
    assert api.seed_datasets.retrieve(ids["dataset_id"]).file_count == 3
    spec = api.specs.retrieve(ids["spec_id"], include_versions=True)
    assert [v.version for v in spec.versions] == [1]
    run = api.runs.retrieve(ids["run_id"])
    assert (run.status, run.samples_completed) == ("SUCCEEDED", 2)
    assert [e.id for e in api.runs.evaluations.list(ids["run_id"])] == [ids["evaluation_id"]]
    assert api.red_team_specs.retrieve(ids["red_team_spec_id"]).concerns == MARKER
    assert api.red_team_runs.retrieve(ids["red_team_run_id"]).status == "SUCCEEDED"
    assert api.judges.retrieve(ids["judge_id"]).rubric == MARKER  # type: ignore[attr-defined]
    assert api.judges.evaluations.list(ids["judge_id"]).count == 1
    assert api.failures.retrieve(ids["failure_id"]).rubrics[0].id == ids["judge_id"]
    assert api.context.retrieve(rubric_id=ids["judge_id"]).rubrics[0].instructions == MARKER
    assert api.anonymization_runs.retrieve(ids["anonymization_run_id"]).status == "SUCCEEDED"
    for link in world.a.links:
        assert httpx.get(link).status_code == 200


def _signer(world: World) -> LinkSigner:
    settings = world.server.settings
    return LinkSigner(settings.signing_secret or load_or_create_secret(settings.secret_path))


def _payload(world: World, link: str) -> dict[str, Any]:
    return dict(_signer(world).verify(DOWNLOAD, link.rpartition("/")[2]))


def test_a_download_link_cannot_be_turned_into_another_tenants(world: World) -> None:
    mine, theirs = world.b.links[0], world.a.links[0]
    payload = _payload(world, mine) | {"k": _payload(world, theirs)["k"]}  # B's link, pointed at A's file
    forged_payload = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    signature = mine.rpartition(".")[2]
    forged = f"{mine.rpartition('/')[0]}/{forged_payload}.{signature}"
    answer = httpx.get(forged)
    assert answer.status_code == 403
    assert answer.json()["code"] == "invalid_link"
    assert MARKER not in answer.text
    assert httpx.get(mine).content.endswith(b"of b")


def test_expired_and_altered_links_are_403(world: World) -> None:
    link = world.a.links[1]
    target = verify_download(_signer(world), link.rpartition("/")[2])
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    expired = sign_download(
        _signer(world), DownloadTarget(target.blob_key, target.filename, target.content_type), past
    )
    answer = httpx.get(f"{link.rpartition('/')[0]}/{expired}")
    assert (answer.status_code, answer.json()["code"]) == (403, "link_expired")
    head, _, signature = link.rpartition(".")
    # The signature's first character carries six bits of it (its last may carry only padding bits).
    altered = f"{head}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    assert httpx.get(altered).status_code == 403
