"""Tenancy of the Adaption API, walked from the app's route table.

Tenant A makes one of everything (an adapted dataset with an evaluation, a custom evaluation, an upload
and a batch left uncompleted); tenant B then calls every ``/api/v1`` route with A's ids in the path (alone
and mixed with B's own) or in the body, and must get 404 every time with nothing of A's in the answer. A
route added later is walked too: it fails here until it is given a body below (ids in the path) or listed
in `NO_TENANT_IDS`/`IDS_IN_BODY`, which is where a reviewer sees whether it needs a tenant check. Then A's
things are checked untouched, the signed upload links of one tenant are checked useless to the other,
and keys are checked stored hashed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import adaption
import httpx
import pytest
from runs_helpers import MAPPING, qa_rows, runs_server, upload, wait_done

from conftest import RunningServer
from datamill.server import create_app
from datamill.server.signing import UPLOAD
from datamill.store import utcnow
from datamill.store.autoscientist_models import AUTOSCIENTIST_JOB, AutoscientistRun
from datamill.store.ids import new_id
from datamill.store.jobs import add_job, cancel_job
from route_walk import api_routes, fill, id_variants, path_params

PREFIX = "/api/v1"
MARKER = f"secret-of-a-{secrets.token_hex(4)}"
CSV = b"question,answer\nq1,a1\n"

#: Routes that take no tenant-owned id anywhere: only checked not to show B anything of A's.
NO_TENANT_IDS = {
    ("GET", "/api/v1/datasets"),
    ("POST", "/api/v1/datasets"),
    ("POST", "/api/v1/datasets/upload/initiate"),
    ("POST", "/api/v1/datasets/upload/initiate-batch"),
    ("GET", "/api/v1/datasets/invent/domains"),
    # Takes no id: it makes a new dataset of the caller's own.
    ("POST", "/api/v1/datasets/invent"),
    ("GET", "/api/v1/models"),
    ("GET", "/api/v1/tools"),
    ("GET", "/api/v1/training-models"),
    ("GET", "/api/v1/autoscientist/models"),
    # Lists the caller's runs only (checked below); its dataset_id query is checked in test_server_catalog.
    ("GET", "/api/v1/autoscientist"),
}

#: Bodies of the routes with ids in their path: valid, so that the tenant check is what answers.
PATH_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/datasets/{dataset_id}/upload/complete"): {"file_size_bytes": len(CSV)},
    ("POST", "/api/v1/datasets/{dataset_id}/custom-evals"): {"judge_prompt": "Polite?", "name": "b"},
    ("POST", "/api/v1/datasets/{dataset_id}/publish"): {"target": "local", "target_spec": {"path": "b"}},
    ("POST", "/api/v1/datasets/{dataset_id}/adapt"): {"column_mapping": MAPPING},
    ("POST", "/api/v1/datasets/{dataset_id}/run"): {"column_mapping": MAPPING},
    ("POST", "/api/v1/datasets/{dataset_id}/translate"): {"sample_rate": 0.5, "languages": ["es"]},
    ("POST", "/api/v1/datasets/{dataset_id}/augment"): {"domain_rows": 1},
    ("POST", "/api/v1/datasets/{dataset_id}/extend-trajectories"): {"column_mapping": MAPPING},
    ("POST", "/api/v1/autoscientist/{experiment_id}/cancel"): {},
    ("POST", "/api/v1/datasets/{dataset_id}/localize"): {
        "sample_rate": 0.5,
        "pairs": [{"country": "MX", "language": "es"}],
    },
}


@dataclass
class Tenant:
    """One tenant's key, SDK client and the ids of what it made."""

    key: str
    sdk: adaption.Adaption
    ids: dict[str, str]
    s3_key: str = ""
    batch_id: str = ""
    batch_s3_key: str = ""
    upload_url: str = ""


def _http(server: RunningServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _custom_eval(sdk: adaption.Adaption, dataset_id: str) -> str:
    made = sdk.datasets.custom_evals.create(dataset_id, judge_prompt="Is it polite?", name=MARKER)
    deadline = time.monotonic() + 30
    while sdk.datasets.custom_evals.get(made.custom_eval_id, dataset_id=dataset_id).status not in (
        "succeeded",
        "failed",
    ):
        assert time.monotonic() < deadline, "the custom evaluation did not finish"
        time.sleep(0.05)
    return str(made.custom_eval_id)


def _autoscientist_run(server: RunningServer, key: str, dataset_id: str) -> str:
    """An AutoScientist run of the tenant, recorded already cancelled (so no worker trains it)."""
    tenant = server.context.tenants.authenticate(key)
    assert tenant is not None
    with server.context.store.session() as session:
        run = AutoscientistRun(
            id=new_id("asr"),
            tenant_id=tenant.id,
            dataset_id=dataset_id,
            model="smollm2-135m-instruct",
            training_method="instruction",
            data_format="chat",
            column_mapping=None,
            hyperparams={"start": {}, "fixed": []},
            max_iterations=1,
            target_win_rate=0.7,
            job_id="",
            iterations=[],
            error=MARKER,
            created_at=utcnow(),
        )
        session.add(run)
        run.job_id = add_job(session, tenant.id, AUTOSCIENTIST_JOB, run.id, {}).id
        session.flush()
        assert cancel_job(session, tenant.id, run.job_id)
        return run.id


def _make_tenant(server: RunningServer, tmp: Path, name: str) -> Tenant:
    key = server.new_key(f"{name}-{secrets.token_hex(3)}")
    sdk = server.client(key=key)
    rows = [{**row, "answer": f"{MARKER} {row['answer']}"} for row in qa_rows(6)]
    dataset_id = upload(sdk, tmp / f"{MARKER}-{name}.csv", rows)
    sdk.datasets.adapt(dataset_id, column_mapping=MAPPING)
    assert wait_done(sdk, dataset_id).status == "succeeded"
    stored = sdk.responses.create(model="fake/judge", input=MARKER, store=True)
    ids = {
        "dataset_id": dataset_id,
        "custom_eval_id": _custom_eval(sdk, dataset_id),
        "response_id": stored["id"],
        "experiment_id": _autoscientist_run(server, key, dataset_id),
    }
    tenant = Tenant(key, sdk, ids)
    with _http(server, key) as http:
        single = http.post(
            f"{PREFIX}/datasets/upload/initiate",
            json={"name": f"{MARKER}.csv", "file_format": "csv", "file_size_bytes": len(CSV)},
        ).json()
        assert httpx.put(single["upload_url"], content=CSV).status_code == 200
        batch = http.post(
            f"{PREFIX}/datasets/upload/initiate-batch",
            json={
                "name": MARKER,
                "files": [{"file_name": "p.csv", "file_format": "csv", "file_size_bytes": 22}],
            },
        ).json()
        assert httpx.put(batch["uploads"][0]["upload_url"], content=CSV).status_code == 200
        link = http.post(f"{PREFIX}/datasets", json={"source": {"name": f"{MARKER}.csv"}}).json()
    tenant.s3_key, tenant.batch_id = single["s3_key"], batch["dataset_id"]
    tenant.batch_s3_key, tenant.upload_url = batch["uploads"][0]["s3_key"], link["upload_instructions"]["url"]
    return tenant


@dataclass
class World:
    server: RunningServer
    a: Tenant
    b: Tenant


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("tenancy")
    env = {
        "DATAMILL_MODEL": "fake/judge",  # the custom evaluations' judge
        "DATAMILL_PUBLISH_ROOTS": str(tmp / "published"),
    }
    with runs_server(tmp / "data", env=env) as server:
        yield World(server, _make_tenant(server, tmp, "a"), _make_tenant(server, tmp, "b"))


def _batch_body(t: Tenant) -> dict[str, Any]:
    files = [
        {"file_name": "p.csv", "file_format": "csv", "file_size_bytes": len(CSV), "s3_key": t.batch_s3_key}
    ]
    return {"dataset_id": t.batch_id, "files": files}


def _single_body(t: Tenant) -> dict[str, Any]:
    return {"s3_key": t.s3_key, "name": "x.csv", "file_format": "csv", "file_size_bytes": len(CSV)}


def _only_a_missing(answer: httpx.Response, w: World) -> None:
    """The dry run of a merge answers 200: A's dataset must be reported as not found, nothing more."""
    assert answer.status_code == 200, answer.text
    issues = answer.json()["issues"]
    assert answer.json()["compatible"] is False
    assert [i["code"] for i in issues if i.get("dataset_id") == w.a.ids["dataset_id"]] == [
        "dataset_not_found"
    ]


def _like_an_unknown_key(answer: httpx.Response, w: World) -> None:
    """An upload key is a body field: A's must get exactly the answer a key that never existed gets."""
    with _http(w.server, w.b.key) as http:
        unknown = http.post(f"{PREFIX}/datasets/upload/complete", json=_single_body(w.a) | {"s3_key": "nope"})
    assert unknown.status_code in (400, 404)
    assert (answer.status_code, answer.json()) == (unknown.status_code, unknown.json())


#: Routes without ids in their path whose body carries them: B's body with A's ids, and the check.
IDS_IN_BODY: dict[tuple[str, str], tuple[Callable[[World], dict[str, Any]], Callable[..., None] | None]] = {
    ("POST", "/api/v1/datasets/upload/complete"): (lambda w: _single_body(w.a), _like_an_unknown_key),
    ("POST", "/api/v1/datasets/upload/complete-batch"): (lambda w: _batch_body(w.a), None),
    ("POST", "/api/v1/datasets/combine"): (
        lambda w: {"dataset_ids": [w.b.ids["dataset_id"], w.a.ids["dataset_id"]], "name": "m"},
        None,
    ),
    ("POST", "/api/v1/datasets/combine/validate"): (
        lambda w: {"dataset_ids": [w.b.ids["dataset_id"], w.a.ids["dataset_id"]]},
        _only_a_missing,
    ),
    ("POST", "/api/v1/autoscientist/recommend-hyperparams"): (
        lambda w: {"dataset_id": w.a.ids["dataset_id"]},
        None,
    ),
    ("POST", "/api/v1/autoscientist"): (lambda w: {"dataset_id": w.a.ids["dataset_id"]}, None),
    ("POST", "/api/v1/responses"): (
        lambda w: {
            "model": "fake/judge",
            "input": "What do you know?",
            "tools": [{"type": "file_search", "dataset_ids": [w.b.ids["dataset_id"], w.a.ids["dataset_id"]]}],
        },
        None,
    ),
}


def _refusal_problem(answer: httpx.Response, what: str) -> str | None:
    if answer.status_code != 404:
        return f"{what}: {answer.status_code} {answer.text[:300]}"
    return f"{what} shows A's data" if MARKER in answer.text else None


def _walk_route(http: httpx.Client, w: World, method: str, path: str) -> list[str | None]:
    """Call one route as B with A's ids; the problems found (None for each call that was refused)."""
    params = path_params(path)
    if params:
        if unknown := set(params) - w.a.ids.keys():
            return [f"{method} {path}: make tenant A own a {sorted(unknown)} in this test"]
        if (method, path) not in PATH_BODIES and method not in ("GET", "DELETE"):
            return [f"{method} {path}: give it a valid body in PATH_BODIES"]
        return [
            _refusal_problem(
                http.request(method, url, json=PATH_BODIES.get((method, path))), f"{method} {url}"
            )
            for url in (fill(path, ids) for ids in id_variants(params, w.a.ids, w.b.ids))
        ]
    if (method, path) in IDS_IN_BODY:
        make_body, check = IDS_IN_BODY[(method, path)]
        answer = http.request(method, path, json=make_body(w))
        if check is None:
            return [_refusal_problem(answer, f"{method} {path}")]
        check(answer, w)
        return [None]
    if (method, path) not in NO_TENANT_IDS:
        return [f"{method} {path} is not covered: list it in IDS_IN_BODY (with A's ids) or NO_TENANT_IDS"]
    return []


@pytest.fixture(scope="module")
def walk(world: World) -> list[str | None]:
    """B walks every route of the API once; one entry per call (a problem, or None)."""
    routes = api_routes(create_app(context=world.server.context), PREFIX)
    assert len(routes) > 15
    with _http(world.server, world.b.key) as http:
        return [found for method, path in routes for found in _walk_route(http, world, method, path)]


def test_every_route_refuses_another_tenants_ids(walk: list[str | None]) -> None:
    problems = [problem for problem in walk if problem]
    assert not problems, "\n".join(problems)
    assert len(walk) >= 20


def test_listing_shows_b_only_its_own(world: World) -> None:
    with _http(world.server, world.b.key) as http:
        listing = http.get(f"{PREFIX}/datasets", params={"limit": 100})
    assert listing.status_code == 200
    ids = {item["dataset_id"] for item in listing.json()["datasets"]}
    assert world.b.ids["dataset_id"] in ids
    assert not ids & {world.a.ids["dataset_id"], world.a.batch_id}


def test_a_things_are_untouched_after_the_walk(world: World, walk: list[str | None]) -> None:
    sdk, ids = world.a.sdk, world.a.ids
    dataset = sdk.datasets.get(ids["dataset_id"])
    assert dataset.status == "succeeded"
    assert not list((world.server.settings.data_dir.parent / "published").glob("**/*"))
    assert len(sdk.datasets.download(ids["dataset_id"], file_format="jsonl").text().splitlines()) == 6
    assert sdk.datasets.custom_evals.get(ids["custom_eval_id"], dataset_id=ids["dataset_id"]).name == MARKER
    assert sdk.responses.retrieve(ids["response_id"])["id"] == ids["response_id"]
    assert sdk.autoscientist.get(ids["experiment_id"]).status == "cancelled"
    assert [run.id for run in world.b.sdk.autoscientist.list()] == [world.b.ids["experiment_id"]]
    with _http(world.server, world.a.key) as http:
        assert http.post(f"{PREFIX}/datasets/upload/complete", json=_single_body(world.a)).status_code == 200
        assert (
            http.post(f"{PREFIX}/datasets/upload/complete-batch", json=_batch_body(world.a)).status_code
            == 200
        )


def test_an_upload_link_of_one_tenant_cannot_be_turned_into_another(world: World) -> None:
    a_link, b_link = urlsplit(world.a.upload_url), urlsplit(world.b.upload_url)
    forged = urlunsplit(b_link._replace(query=a_link.query))  # B's upload id, A's signature
    assert httpx.put(forged, content=CSV).status_code == 403
    upload_id = b_link.path.rsplit("/", 1)[-1]
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    token = world.server.context.signer.sign(UPLOAD, {"upload_id": upload_id}, past)
    expired = urlunsplit(b_link._replace(query=urlencode({"token": token})))
    assert httpx.put(expired, content=CSV).status_code == 403
    assert httpx.put(world.b.upload_url, content=CSV).status_code == 200


def test_keys_are_stored_hashed(world: World) -> None:
    database = world.server.settings.data_dir / "datamill.db"
    with sqlite3.connect(database) as db:
        stored = db.execute("SELECT key_hash, prefix FROM api_keys").fetchall()
    hashes = {row[0] for row in stored}
    for key in (world.a.key, world.b.key):
        assert hashlib.sha256(key.encode()).hexdigest() in hashes
        assert all(key not in value for row in stored for value in row)
        for path in database.parent.glob("datamill.db*"):
            assert key.encode() not in path.read_bytes()
