"""Server runs that cannot succeed end `failed` with a reason, never a green success with no rows."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from runs_helpers import (
    LOOP_MODEL,
    MAPPING,
    loopback_model,
    qa_rows,
    run_settings,
    runs_server,
    upload,
    wait_done,
    write_routes,
)

from datamill.llm.fake_server import FakeResponse

NO_RECIPES = {"recipes": {"prompt_rephrase": False, "deduplication": False}}


def _run(tmp_path: Path, base_url: str, **route: Any) -> Any:
    routes = write_routes(tmp_path / "routes.yaml", base_url, **route)
    settings = run_settings(model=LOOP_MODEL, routes_path=routes, evaluate=False)
    with runs_server(tmp_path / "data", settings) as srv:
        client = srv.client()
        dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(12))
        client.datasets.adapt(dataset_id, column_mapping=MAPPING, recipe_specification=NO_RECIPES)
        return wait_done(client, dataset_id)


def test_a_run_whose_every_row_is_refused_fails_naming_the_refusal(tmp_path: Path) -> None:
    def refuse(body: dict[str, Any]) -> str:
        return "I'm sorry, but I can't help with that."

    with loopback_model(reply=refuse) as model:
        status = _run(tmp_path, model.base_url)

    assert status.status == "failed"
    assert status.error_data is not None
    assert status.error_data.code == "E0305"
    assert "every row was rejected (12 rows)" in (status.error_data.message or "")
    assert "refused" in (status.error_data.message or "")


def test_a_refused_port_fails_the_run_naming_the_route(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status = _run(tmp_path, f"http://127.0.0.1:{port}/v1")

    assert status.status == "failed"
    assert status.error_data is not None
    assert status.error_data.code == "E0300"
    message = status.error_data.message or ""
    assert "loop/model" in message
    assert "refused" in message


def test_a_spent_quota_fails_the_run_at_once(tmp_path: Path) -> None:
    quota = {"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota"}}
    with loopback_model(reply=lambda body: FakeResponse(429, quota, {"retry-after": "1"})) as model:
        status = _run(tmp_path, model.base_url, max_concurrency=1)
        asked = model.count

    assert status.status == "failed"
    assert status.error_data is not None
    assert status.error_data.code == "E0300"
    assert "no quota or credit left" in (status.error_data.message or "")
    assert asked == 1  # the calls waiting for the route's one slot were never sent
