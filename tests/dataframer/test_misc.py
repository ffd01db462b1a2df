"""The small Dataframer endpoints through the official SDK: the data-plane probe, key rotation, analysis."""

from __future__ import annotations

import httpx
import pytest

import dataframer
from conftest import RunningServer


def test_data_plane_probe_answers_not_hybrid(df_endpoint: tuple[str, str]) -> None:
    base_url, key = df_endpoint
    for method in ("POST", "GET", "PUT"):
        answer = httpx.request(
            method, f"{base_url}/api/data-plane/token/", headers={"Authorization": f"Bearer {key}"}
        )
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.json()["code"] == "not_hybrid"


def test_rotate_revokes_the_calling_key(df_endpoint: tuple[str, str]) -> None:
    base_url, key = df_endpoint
    with dataframer.Dataframer(base_url=base_url, api_key=key, max_retries=0) as old:
        rotated = old.api_keys.rotate()
        assert rotated.api_key
        assert rotated.api_key != key
        assert rotated.masked_key == f"{rotated.api_key[:4]}********{rotated.api_key[-4:]}"
        assert rotated.expires_at is None
        with pytest.raises(dataframer.AuthenticationError) as caught:
            old.dataframer.failures.list()
        assert caught.value.body["code"] == "authentication_failed"
        with pytest.raises(dataframer.AuthenticationError):
            old.api_keys.rotate()
    with dataframer.Dataframer(base_url=base_url, api_key=rotated.api_key, max_retries=0) as new:
        assert new.dataframer.failures.list().count == 0


def test_rotated_key_keeps_the_tenant(df_server: RunningServer, df_endpoint: tuple[str, str]) -> None:
    base_url, key = df_endpoint
    before = df_server.context.tenants.authenticate(key)
    with dataframer.Dataframer(base_url=base_url, api_key=key, max_retries=0) as old:
        rotated = old.api_keys.rotate()
    after = df_server.context.tenants.authenticate(rotated.api_key)
    assert before is not None
    assert after is not None
    assert after.id == before.id


def test_analysis_endpoints_are_empty(client: dataframer.Dataframer) -> None:
    failures = client.dataframer.failures.list(include="reviews,context")
    assert failures.count == 0
    assert failures.results == []
    context = client.dataframer.context.retrieve()
    assert context.rubric_count == 0
    assert context.rubrics == []
    judges = client.dataframer.judges.list(limit=5)
    assert judges.count == 0
    assert judges.results == []
    for call in (
        lambda: client.dataframer.failures.retrieve("f1"),
        lambda: client.dataframer.context.retrieve(rubric_id="r1"),
        lambda: client.dataframer.judges.retrieve("j1"),
        lambda: client.dataframer.judges.evaluations.list("j1"),
        lambda: client.dataframer.judges.evaluations.retrieve("e1", judge_id="j1"),
        lambda: client.dataframer.judges.evaluations.create("j1", input="q", output="a"),
    ):
        with pytest.raises(dataframer.NotFoundError) as caught:
            call()
        assert caught.value.body["code"] == "not_found"


def test_analysis_needs_a_key(df_endpoint: tuple[str, str]) -> None:
    base_url, _key = df_endpoint
    answer = httpx.get(f"{base_url}/api/dataframer/failures/")
    assert answer.status_code == 401
    assert answer.json()["code"] == "authentication_failed"
