"""Cancelling an adaptation from the watch page, in headless Chromium, on a model slow enough to catch it
running; and the cancel endpoint's refusals over plain HTTP (no run yet, another tenant's dataset)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runs_helpers import LOOP_MODEL, loopback_model, qa_rows, run_settings, runs_server, write_routes
from web_helpers import Screenshots, csrf_of, drop_file, session_client, sign_in

from conftest import RunningServer

ROWS = 60


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("web-cancel")
    with loopback_model(latency_s=0.1) as model:
        routes = write_routes(root / "routes.yaml", model.base_url, max_concurrency=1)
        settings = run_settings(model=LOOP_MODEL, routes_path=routes, evaluate=False)
        with runs_server(root / "data", settings) as running:
            yield running


def _launch(page: Any) -> None:
    """Map question → prompt and answer → completion, wait for the estimate, launch."""
    page.click("text=Adapt")
    page.select_option("#map-prompt", "question")
    page.select_option("#map-completion", "answer")
    page.wait_for_function("() => document.getElementById('adapt-form').dataset.state === 'valid'")
    page.click("#launch")


def test_cancel_a_run_from_the_watch_page(
    slow_server: RunningServer, browser: Any, screenshot: Screenshots
) -> None:
    page = sign_in(browser, slow_server.base_url, slow_server.new_key("acme-cancel"))
    jsonl = "".join(json.dumps(row) + "\n" for row in qa_rows(ROWS))
    drop_file(page, "#dropzone", "long.jsonl", jsonl)
    page.wait_for_url(re.compile(r".*/datasets/ds_[^/]+$"))
    page.wait_for_selector("#preview")
    dataset_url = page.url
    _launch(page)
    page.wait_for_url(f"{dataset_url}/run")
    page.wait_for_function("() => document.getElementById('run-status').textContent === 'running'")
    # Past the first batches of 4 rows, so some are saved before the cancel lands.
    page.wait_for_function("() => Number(document.getElementById('run-progress').value) >= 15")
    assert page.is_visible("#run-cancel")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#run-cancel")
    page.wait_for_selector('#run[data-finished="true"]')
    assert page.inner_text("#run-status") == "cancelled"
    assert page.inner_text("#run-error") == "the run was cancelled"
    assert page.is_hidden("#run-cancel")
    # The header's balance followed the charge of the rows made before the cancel, without a reload.
    fresh = page.context.new_page()
    fresh.goto(dataset_url)
    page.wait_for_function(
        "(shown) => document.getElementById('credit-balance').textContent === shown",
        arg=fresh.inner_text("#credit-balance"),
    )
    fresh.close()
    screenshot(page, "run-cancelled")

    # The rows finished before the cancel download like a failed run's.
    with page.expect_download() as download:
        page.click('.downloads a[href$="/download/jsonl"]')
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert 0 < len(lines) < ROWS
    # The dataset page and the list say cancelled too, never failed.
    page.goto(dataset_url)
    assert page.inner_text("#dataset-status") == "cancelled"
    assert page.inner_text("main .card .status") == "cancelled"  # its latest run
    assert "failed" not in page.inner_text("main")
    page.goto(f"{slow_server.base_url}/datasets")
    assert page.inner_text("#datasets tbody tr:has-text('long.jsonl') .status") == "cancelled"
    page.context.close()


def test_cancel_refuses_a_dataset_without_a_run_and_another_tenants(slow_server: RunningServer) -> None:
    owner = slow_server.new_key()
    with session_client(slow_server.base_url, owner) as client:
        token = csrf_of(client)
        headers = {"x-csrf-token": token, "accept": "application/json"}
        start = client.post("/datasets/upload", json={"name": "tiny.csv", "size_bytes": 1}, headers=headers)
        assert start.status_code == 201, start.text
        dataset_id = start.json()["dataset_id"]
        # No run yet: nothing to cancel.
        answer = client.post(f"/datasets/{dataset_id}/run/cancel", headers=headers)
        assert answer.status_code == 404
        assert "not found" in answer.json()["message"]
    with session_client(slow_server.base_url, slow_server.new_key()) as other:
        headers = {"x-csrf-token": csrf_of(other), "accept": "application/json"}
        answer = other.post(f"/datasets/{dataset_id}/run/cancel", headers=headers)
        assert answer.status_code == 404
        assert dataset_id in answer.json()["message"]
