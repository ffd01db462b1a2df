"""Translate from a dataset's page in headless Chromium: a refused form names its field, a good one makes
the new dataset and leads to its run, which ends with the source rows plus the translated ones."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runs_helpers import MAPPING, qa_rows, runs_server, upload
from web_helpers import sign_in

from conftest import RunningServer

ROWS = 6


@pytest.fixture(scope="module")
def expand_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # The fake model's "translations" are hash strings, which the multilingual meaning check rightly
    # rejects; it is left out, as on an install without the embeddings extra
    # (tests/test_expansion_meaning.py shows the check itself).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("datamill.services.adaptation.step_services.e5_available", lambda: False)
        with runs_server(tmp_path_factory.mktemp("web-expand")) as running:
            yield running


def test_translate_a_dataset_from_its_page(
    expand_server: RunningServer, browser: Any, tmp_path: Path
) -> None:
    key = expand_server.new_key("acme-expand")
    rows = [  # no digits: the fake model's "translations" keep none, which the detail check would refuse
        {**row, "question": row["question"].split(": ", 1)[1], "answer": "An answer."}
        for row in qa_rows(ROWS)
    ]
    sdk = expand_server.client(key=key)
    source_id = upload(sdk, tmp_path / "faq.csv", rows, processing_mode="raw", column_mapping=MAPPING)
    page = sign_in(browser, expand_server.base_url, key)
    page.goto(f"{expand_server.base_url}/datasets/{source_id}")

    page.fill("#expand-rate", "1")
    page.click("#expand-form button[type=submit]")  # no language
    page.wait_for_function("() => document.getElementById('expand-form').dataset.state === 'invalid'")
    assert page.inner_text('#expand-form [data-issue="languages"]') != ""

    page.fill("#expand-languages", "es, fr")
    page.click("#expand-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/datasets/ds_[^/]+/run$"))
    new_id = page.url.rsplit("/", 2)[-2]
    assert new_id != source_id
    page.wait_for_selector('#run[data-finished="true"]', timeout=90_000)
    assert page.inner_text("#run-status") == "succeeded"
    made = sdk.datasets.get(new_id)
    assert made.row_count == ROWS * 3  # each row, plus one per language
    page.context.close()
