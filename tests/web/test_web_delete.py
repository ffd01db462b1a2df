"""Deleting a dataset from the web app in headless Chromium: the page asks first, the dataset leaves the
list and its pages answer 404; the API's own checks apply (another tenant's id is not found)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runs_helpers import MAPPING, qa_rows, upload, wait_done
from web_helpers import csrf_of, session_client, sign_in

from conftest import RunningServer


def test_delete_a_dataset_from_its_page(web_server: RunningServer, browser: Any, tmp_path: Path) -> None:
    key = web_server.new_key("acme-delete")
    sdk = web_server.client(key=key)
    dataset_id = upload(sdk, tmp_path / "old-tickets.csv", qa_rows(3))
    sdk.datasets.adapt(dataset_id, column_mapping=MAPPING)
    assert wait_done(sdk, dataset_id).status == "succeeded"
    base = web_server.base_url

    with session_client(base, web_server.new_key()) as other:  # another tenant cannot delete it
        answer = other.post(
            f"/datasets/{dataset_id}/delete",
            headers={"x-csrf-token": csrf_of(other), "accept": "application/json"},
        )
        assert answer.status_code == 404

    page = sign_in(browser, base, key)
    page.goto(f"{base}/datasets/{dataset_id}")
    page.once("dialog", lambda dialog: dialog.dismiss())  # Cancel in the confirmation: nothing happens
    page.click("#dataset-delete")
    assert page.url == f"{base}/datasets/{dataset_id}"
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("#dataset-delete")
    page.wait_for_url(f"{base}/datasets")
    assert "old-tickets" in asked[0]
    assert "old-tickets" not in page.inner_text("#datasets")
    answer = page.goto(f"{base}/datasets/{dataset_id}/run")
    assert answer is not None
    assert answer.status == 404
    page.context.close()
