"""The whole job in headless Chromium: sign in, drop a file, map columns, read the estimate, launch on the
fake model, watch it finish, compare before and after, read the report, download; and tenant isolation.

Each main page is saved as a screenshot: into pytest's tmp dir, or into ``docs/screenshots/`` for the README
when ``DATAMILL_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from runs_helpers import qa_rows
from web_helpers import Screenshots, drop_file, sign_in

from conftest import RunningServer


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _issue(page: Any, field: str) -> str:
    return str(page.inner_text(f'[data-issue="{field}"]'))


def _wait_checked(page: Any) -> str:
    page.wait_for_function(
        "() => ['valid', 'invalid'].includes(document.getElementById('adapt-form').dataset.state)"
    )
    return str(page.get_attribute("#adapt-form", "data-state"))


def _pick(page: Any, selector: str, value: str) -> str:
    """Choose an option and wait for the check of the new form."""
    page.evaluate("() => { document.getElementById('adapt-form').dataset.state = 'changed'; }")
    page.select_option(selector, value)
    return _wait_checked(page)


def test_adapt_a_dataset_in_the_browser(
    web_server: RunningServer, browser: Any, screenshot: Screenshots
) -> None:
    base = web_server.base_url
    page = sign_in(browser, base, web_server.new_key("acme-support"))
    rows = qa_rows(11)
    rows.append(dict(rows[0], id=99))  # an exact duplicate question and answer: dedup rejects it

    # Upload by drag and drop; the dataset page shows the rows with their column types.
    jsonl = "".join(json.dumps(row) + "\n" for row in rows)
    drop_file(page, "#dropzone", "support.jsonl", jsonl)
    page.wait_for_url(re.compile(r".*/datasets/ds_[^/]+$"))
    page.wait_for_selector("#preview")
    assert page.inner_text("#dataset-rows") == "12"
    header = page.inner_text("#preview thead")
    assert "question" in header
    assert "int64" in header
    assert "string" in header
    assert page.locator("#preview tbody tr").count() == 12
    dataset_url = page.url
    screenshot(page, "dataset")

    # Map columns: the API's mode rules and messages show as the user picks.
    page.click("text=Adapt")
    assert _wait_checked(page) == "invalid"
    assert _issue(page, "column_mapping") == ""  # no error before the user does anything
    assert page.is_disabled("#launch")
    assert _pick(page, "#map-prompt", "question") == "valid"
    assert _pick(page, "#map-completion", "question") == "invalid"
    assert "already mapped as prompt" in _issue(page, "column_mapping.completion")
    assert _pick(page, "#map-completion", "answer") == "valid"
    page.evaluate("() => { document.getElementById('adapt-form').dataset.state = 'changed'; }")
    page.check('input[name="mode"][value="universal_prompt"]')
    assert _wait_checked(page) == "invalid"
    assert page.is_hidden("#map-prompt")
    page.evaluate("() => { document.getElementById('adapt-form').dataset.state = 'changed'; }")
    page.fill("#map-universal_prompt", "Answer as a support agent")
    assert _wait_checked(page) == "invalid"
    assert "needs at least one context column" in _issue(page, "column_mapping.context")
    page.evaluate("() => { document.getElementById('adapt-form').dataset.state = 'changed'; }")
    page.check('input[name="mode"][value="prompt"]')
    assert _wait_checked(page) == "valid"

    # The estimate refreshes as options change.
    assert page.inner_text("#est-rows") == "12 → 11"
    calls_default = int(page.inner_text("#est-calls").replace(",", ""))
    page.evaluate("() => { document.getElementById('adapt-form').dataset.state = 'changed'; }")
    page.check('input[name="recipe"][value="reasoning_traces"]')
    assert _wait_checked(page) == "valid"
    assert int(page.inner_text("#est-calls").replace(",", "")) > calls_default
    assert float(page.inner_text("#est-credits").replace(",", "")) > 0
    assert page.inner_text("#est-cost").startswith("$")
    assert page.inner_text("#est-model") == "fake/test-model"
    screenshot(page, "adapt")

    # Launch, and watch it finish without reloading.
    page.click("#launch")
    page.wait_for_url(f"{dataset_url}/run")
    page.wait_for_selector('#run[data-finished="true"]', timeout=90_000)
    assert page.inner_text("#run-status") == "succeeded"
    assert page.inner_text("#run-rows") == "12 / 12"
    assert page.inner_text("#run-out") == "11"
    assert page.inner_text("#run-rejected") == "1"
    assert page.inner_text("#run-eval") == "succeeded"
    screenshot(page, "run")

    # Compare before and after; the rejected row with its reason.
    page.click("#run-done >> text=Compare before/after")
    page.wait_for_selector("#compare")
    assert page.locator("#compare ins").count() > 0
    assert "deduplication" in page.inner_text("#rejected")
    assert page.locator("#grades .grade").count() == 3
    screenshot(page, "compare")

    # The evaluation report with grades and plots.
    page.click("text=Full evaluation report")
    page.wait_for_selector("#charts svg")
    assert page.locator("#grades .grade").first.inner_text() in "ABCDE"
    screenshot(page, "report")

    # Download the output as CSV and as JSONL.
    page.goto(f"{dataset_url}/run")
    with page.expect_download() as csv_download:
        page.click('.downloads a[href$="/download/csv"]')
    assert csv_download.value.suggested_filename.endswith(".csv")
    with open(csv_download.value.path(), encoding="utf-8") as handle:
        out = list(csv.DictReader(handle))
    assert len(out) == 11
    assert {"original_prompt", "enhanced_prompt", "enhanced_completion"} <= set(out[0])
    with page.expect_download() as jsonl_download:
        page.click('.downloads a[href$="/download/jsonl"]')
    with open(jsonl_download.value.path(), encoding="utf-8") as handle:
        assert [json.loads(line)["id"] for line in handle] == [r["id"] for r in rows[:11]]

    page.goto(f"{base}/datasets")
    assert "support.jsonl" in page.inner_text("#datasets")
    screenshot(page, "datasets")
    page.context.close()


def test_another_tenant_sees_nothing_of_it(
    web_server: RunningServer, browser: Any, screenshot: Screenshots
) -> None:
    owner = sign_in(browser, web_server.base_url, web_server.new_key())
    drop_file(owner, "#dropzone", "private.csv", _csv(qa_rows(3)))
    owner.wait_for_url(re.compile(r".*/datasets/ds_[^/]+$"))
    dataset_url = owner.url
    owner.context.close()

    other = sign_in(browser, web_server.base_url, web_server.new_key())
    assert "private.csv" not in other.inner_text("#datasets")
    answer = other.goto(dataset_url)
    assert answer is not None
    assert answer.status == 404
    assert "not found" in other.inner_text("main")
    assert other.goto(f"{dataset_url}/compare").status == 404
    other.goto(f"{web_server.base_url}/login")
    screenshot(other, "login")
    other.context.close()
