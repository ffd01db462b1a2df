"""Publishing from the web app in headless Chromium: the form offers only the targets the server is set up
for, a refused publish answers inside the page (its layout, the form as filled in, the reason beside it),
and a good one writes the files; a server set up for none says so instead of offering a form."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runs_helpers import MAPPING, qa_rows, run_settings, runs_server, upload, wait_done
from web_helpers import sign_in

from conftest import RunningServer


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("publish-root")


@pytest.fixture(scope="module")
def publish_server(tmp_path_factory: pytest.TempPathFactory, roots: Path) -> Iterator[RunningServer]:
    """A server that may publish under `roots` only (no Hugging Face token)."""
    env = {"DATAMILL_PUBLISH_ROOTS": str(roots)}
    data = tmp_path_factory.mktemp("web-publish")
    with runs_server(data, run_settings(evaluate=False), env=env) as running:
        yield running


def _adapted(server: RunningServer, key: str, folder: Path) -> str:
    """A dataset of the tenant of `key` with a finished run; its id."""
    sdk = server.client(key=key)
    dataset_id = upload(sdk, folder / "tickets.csv", qa_rows(3))
    sdk.datasets.adapt(dataset_id, column_mapping=MAPPING)
    assert wait_done(sdk, dataset_id).status == "succeeded"
    return dataset_id


def test_publish_offers_the_configured_targets_and_answers_in_the_page(
    publish_server: RunningServer, browser: Any, roots: Path, tmp_path: Path
) -> None:
    base = publish_server.base_url
    key = publish_server.new_key("acme-publish")
    dataset_id = _adapted(publish_server, key, tmp_path)
    page = sign_in(browser, base, key)
    page.goto(f"{base}/datasets/{dataset_id}/run")
    page.click("#publish summary")
    options = page.eval_on_selector_all("#publish-target option", "els => els.map((e) => e.value)")
    assert options == ["local"]  # no Hugging Face: the server has no token
    assert str(roots) in str(page.get_attribute("#publish-location", "placeholder"))

    # Outside the allowed root: the reason shows beside the form, inside the app's layout.
    outside = str(tmp_path / "elsewhere")
    page.fill("#publish-location", outside)
    page.select_option("#publish-form select[name=file_format]", "jsonl")
    with page.expect_navigation() as answered:
        page.click("#publish-form button[type=submit]")
    assert answered.value.status == 400
    assert "outside the directories" in page.inner_text("#publish-error")
    assert "Datasets" in page.inner_text("header.top nav")
    assert "Run" in page.inner_text("main nav.tabs")
    assert page.input_value("#publish-location") == outside  # kept as typed
    assert page.input_value("#publish-form select[name=file_format]") == "jsonl"
    assert page.locator("main h1").inner_text() == "tickets"  # the dataset's page, not an error page

    # Inside it: published, the files on disk.
    page.fill("#publish-location", str(roots / "tickets"))
    with page.expect_navigation() as answered:
        page.click("#publish-form button[type=submit]")
    assert answered.value.status == 200
    assert "published 3 rows" in page.inner_text("main")
    assert (roots / "tickets" / "data" / "train.jsonl").read_text(encoding="utf-8").count("\n") == 3
    assert (roots / "tickets" / "README.md").is_file()
    page.context.close()


def test_a_server_without_publish_settings_offers_no_form(
    web_server: RunningServer, browser: Any, tmp_path: Path
) -> None:
    key = web_server.new_key()
    dataset_id = _adapted(web_server, key, tmp_path)
    page = sign_in(browser, web_server.base_url, key)
    page.goto(f"{web_server.base_url}/datasets/{dataset_id}/run")
    page.click("#publish summary")
    assert page.locator("#publish-form").count() == 0
    assert "DATAMILL_PUBLISH_ROOTS" in page.inner_text("#publish-none")
    page.context.close()
