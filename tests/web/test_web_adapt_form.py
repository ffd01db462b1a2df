"""The adapt form in headless Chromium: a fresh form shows no error before the user does anything, the
estimate panel never shows old numbers beside "fix the issues above", and the header's balance follows the
tenant's credits while the page stays open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runs_helpers import MAPPING, qa_rows, upload, wait_done
from web_helpers import sign_in

from conftest import RunningServer


def _checked(page: Any, change: Any = None) -> str:
    """Make `change` (if any) and wait for the form's check of it (else for its first check); its state."""
    if change is not None:
        page.evaluate("() => { document.getElementById('adapt-form').dataset.state = 'changed'; }")
        change()
    page.wait_for_function(
        "() => ['valid', 'invalid'].includes(document.getElementById('adapt-form').dataset.state)"
    )
    return str(page.get_attribute("#adapt-form", "data-state"))


def _shown_issues(page: Any) -> list[str]:
    slots = page.eval_on_selector_all("#adapt-form [data-issue]", "els => els.map((e) => e.textContent)")
    listed = page.eval_on_selector_all("#issues li", "els => els.map((e) => e.textContent)")
    return [text for text in [*slots, *listed] if text.strip()]


def test_the_adapt_form_shows_errors_after_input_and_only_current_numbers(
    web_server: RunningServer, browser: Any, tmp_path: Path
) -> None:
    key = web_server.new_key("acme-form")
    sdk = web_server.client(key=key)
    dataset_id = upload(sdk, tmp_path / "qa.csv", qa_rows(5))
    other_id = upload(sdk, tmp_path / "more.csv", qa_rows(5, start=10))
    base = web_server.base_url
    page = sign_in(browser, base, key)
    balance_at_load = page.inner_text("#credit-balance")

    # A fresh form: checked, not launchable, but no red error before any input.
    page.goto(f"{base}/datasets/{dataset_id}/adapt")
    assert _checked(page) == "invalid"
    assert _shown_issues(page) == []
    assert page.inner_text("#est-state") == "Choose the columns to see an estimate."
    assert page.is_disabled("#launch")

    # Valid: an estimate. Then invalid: the issue, and no numbers of the former form beside it.
    assert _checked(page, lambda: page.select_option("#map-prompt", "question")) == "valid"
    assert page.inner_text("#est-credits") != "–"
    assert _checked(page, lambda: page.select_option("#map-completion", "question")) == "invalid"
    assert "already mapped as prompt" in page.inner_text('[data-issue="column_mapping.completion"]')
    assert page.inner_text("#est-state") == "Fix the issues above to see the estimate."
    for slot in ("#est-credits", "#est-cost", "#est-minutes", "#est-rows", "#est-calls", "#est-model"):
        assert page.inner_text(slot) == "–", slot

    # Another run of the tenant is charged while the page is open: the next check shows the new balance.
    sdk.datasets.adapt(other_id, column_mapping=MAPPING)
    assert wait_done(sdk, other_id).status == "succeeded"
    assert _checked(page, lambda: page.select_option("#map-completion", "answer")) == "valid"
    fresh = page.context.new_page()
    fresh.goto(f"{base}/datasets")
    assert fresh.inner_text("#credit-balance") != balance_at_load
    assert page.inner_text("#credit-balance") == fresh.inner_text("#credit-balance")
    page.context.close()
