"""Combining datasets from the list in headless Chromium: a refused form says why, and two checked
datasets make a new one holding the rows of both."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from runs_helpers import qa_rows, upload
from web_helpers import sign_in

from conftest import RunningServer


def _submit(page: Any) -> str:
    page.evaluate("() => { document.getElementById('combine-form').dataset.state = 'sending'; }")
    page.click("#combine-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('combine-form').dataset.state !== 'sending'")
    return str(page.get_attribute("#combine-form", "data-state"))


def test_combine_two_datasets_from_the_list(web_server: RunningServer, browser: Any, tmp_path: Path) -> None:
    key = web_server.new_key("acme-combine")
    sdk = web_server.client(key=key)
    first = upload(sdk, tmp_path / "march.csv", qa_rows(3))
    second = upload(sdk, tmp_path / "april.csv", qa_rows(4, start=3))
    page = sign_in(browser, web_server.base_url, key)

    page.check(f'input[name="dataset_ids"][value="{first}"]')
    page.fill("#combine-name", "spring")
    assert _submit(page) == "invalid"
    assert "two or more" in page.inner_text('#combine-form [data-issue="dataset_ids"]')

    page.check(f'input[name="dataset_ids"][value="{second}"]')
    page.fill("#combine-name", "")
    assert _submit(page) == "invalid"
    assert "required" in page.inner_text('#combine-form [data-issue="name"]')

    page.fill("#combine-name", "spring")
    page.click("#combine-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/datasets/ds_[^/]+$"))
    assert page.url.rsplit("/", 1)[-1] not in (first, second)
    page.wait_for_function("() => document.getElementById('dataset-rows').textContent === '7'")
    assert page.inner_text("main h1") == "spring"
    page.goto(f"{web_server.base_url}/datasets")
    assert "spring" in page.inner_text("#datasets")
    page.context.close()
