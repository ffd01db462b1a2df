"""Custom evaluations from a dataset's page in headless Chromium: a refused form names its field, a good one
judges a sample of the rows against the user's rubric before and after the run, and the page shows the
scores the API reports once the judge is done."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runs_helpers import MAPPING, qa_rows, run_settings, runs_server, upload, wait_done
from web_helpers import sign_in

from conftest import RunningServer


@pytest.fixture(scope="module")
def eval_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose judge of custom evaluations (DATAMILL_MODEL) is the fake model too."""
    data = tmp_path_factory.mktemp("web-evals")
    with runs_server(data, run_settings(evaluate=False), env={"DATAMILL_MODEL": "fake/judge"}) as running:
        yield running


def test_judge_a_dataset_against_a_rubric_from_its_page(
    eval_server: RunningServer, browser: Any, tmp_path: Path
) -> None:
    key = eval_server.new_key("acme-evals")
    sdk = eval_server.client(key=key)
    dataset_id = upload(sdk, tmp_path / "qa.csv", qa_rows(4))
    sdk.datasets.adapt(dataset_id, column_mapping=MAPPING)
    assert wait_done(sdk, dataset_id).status == "succeeded"
    page = sign_in(browser, eval_server.base_url, key)
    page.goto(f"{eval_server.base_url}/datasets/{dataset_id}")

    page.click("#custom-eval-form button[type=submit]")  # no rubric
    page.wait_for_function("() => document.getElementById('custom-eval-form').dataset.state === 'invalid'")
    assert "rubric" in page.inner_text('#custom-eval-form [data-issue="judge_prompt"]')

    page.fill("#custom-eval-name", "concise")
    page.fill("#custom-eval-prompt", "Is the answer concise?")
    page.fill("#custom-eval-size", "3")
    page.click("#custom-eval-form button[type=submit]")
    page.wait_for_url(re.compile(r".*\?custom_eval=ce_\w+#custom-evals$"))
    row = page.locator("#custom-eval-list tbody tr").first
    page.wait_for_function(
        "() => document.querySelector('#custom-eval-list tbody tr .status').textContent === 'succeeded'",
        timeout=60_000,
    )
    (made,) = sdk.datasets.custom_evals.list(dataset_id).items
    assert (made.name, made.status, made.scored_rows) == ("concise", "succeeded", 3)
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "concise"
    assert cells[2] == f"{made.score_before:.1f}"
    assert cells[3] == f"{made.score_after:.1f}"
    assert cells[5] == "3"
    page.context.close()
