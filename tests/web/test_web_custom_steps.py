"""The adapt page takes a run's own steps and prompt templates (headless Chromium, the fake model): JSON that
does not parse and a template that reaches for ``__class__`` show beside their box and keep Launch off; a
valid step with a schema adds its calls to the estimate, and the launched run's output has its column."""

from __future__ import annotations

import json
import re
from typing import Any

from runs_helpers import qa_rows
from web_helpers import drop_file, sign_in

from conftest import RunningServer

STEP = {
    "name": "topic",
    "output": "topic",
    "template": "Name the topic of: {{ original_prompt }}",
    "schema": {"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]},
}
TEMPLATES = {
    "completion": {"version": 1, "messages": [{"role": "user", "content": "Customer asks: {{ prompt }}"}]}
}


def _checked(page: Any) -> str:
    page.wait_for_function(
        "() => ['valid', 'invalid'].includes(document.getElementById('adapt-form').dataset.state)"
    )
    return str(page.get_attribute("#adapt-form", "data-state"))


def _changed(page: Any) -> None:
    page.evaluate("() => { document.getElementById('adapt-form').dataset.state = 'changed'; }")


def _fill(page: Any, selector: str, text: str) -> str:
    """Type into a box and wait for the check of the new form; the form's state."""
    _changed(page)
    page.fill(selector, text)
    return _checked(page)


def test_own_steps_and_templates_from_the_adapt_page(web_server: RunningServer, browser: Any) -> None:
    page = sign_in(browser, web_server.base_url, web_server.new_key("acme-steps"))
    drop_file(page, "#dropzone", "tickets.jsonl", "".join(json.dumps(row) + "\n" for row in qa_rows(4)))
    page.wait_for_url(re.compile(r".*/datasets/ds_[^/]+$"))
    dataset_url = page.url
    page.click("text=Adapt")
    _checked(page)
    _changed(page)
    page.select_option("#map-prompt", "question")
    _checked(page)
    _changed(page)
    page.select_option("#map-completion", "answer")
    assert _checked(page) == "valid"
    calls_before = int(page.inner_text("#est-calls").replace(",", ""))

    assert _fill(page, "#custom_steps", "[{name: topic}]") == "invalid"
    assert "not valid JSON" in page.inner_text('[data-issue="custom_steps"]')
    assert page.is_disabled("#launch")

    probe = [STEP | {"template": "{{ original_prompt.__class__.__mro__ }}"}]
    assert _fill(page, "#custom_steps", json.dumps(probe)) == "invalid"
    assert "may not use names that start with '_'" in page.inner_text('[data-issue="custom_steps"]')
    assert page.is_disabled("#launch")

    assert _fill(page, "#custom_steps", json.dumps([STEP])) == "valid"
    assert _fill(page, "#prompt_templates", json.dumps(TEMPLATES)) == "valid"
    assert int(page.inner_text("#est-calls").replace(",", "")) > calls_before

    page.click("#launch")
    page.wait_for_url(f"{dataset_url}/run")
    page.wait_for_selector('#run[data-finished="true"]', timeout=90_000)
    assert page.inner_text("#run-status") == "succeeded"
    with page.expect_download() as download:
        page.click('.downloads a[href$="/download/jsonl"]')
    with open(download.value.path(), encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    assert len(rows) == 4
    assert all(isinstance(row["topic"]["topic"], str) for row in rows)
    assert all(row["enhanced_completion"].startswith("[fake] Customer asks: ") for row in rows)
    page.context.close()
