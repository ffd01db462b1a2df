"""Error pages of the web app in headless Chromium: a 404, a 400 and a 403 keep the layout (the header with
its navigation, balance and sign-out) and link back to the page the user came from."""

from __future__ import annotations

from typing import Any

from web_helpers import sign_in

from conftest import RunningServer


def _has_the_layout(page: Any) -> None:
    nav = page.inner_text("header.top nav")
    assert "Datasets" in nav
    assert "Generate" in nav
    assert "credits" in page.inner_text("header.top .who")
    assert page.is_visible("header.top button:has-text('Sign out')")


def test_error_pages_keep_the_navigation_and_a_way_back(web_server: RunningServer, browser: Any) -> None:
    base = web_server.base_url
    page = sign_in(browser, base, web_server.new_key("acme-errors"))

    # 404: an unknown dataset, reached from the list; Back returns there.
    page.goto(f"{base}/datasets?q=x")
    answer = page.goto(f"{base}/datasets/ds_missing")
    assert answer is not None
    assert answer.status == 404
    assert "not found" in page.inner_text("main .error")
    _has_the_layout(page)
    page.click("#error-back")
    page.wait_for_url(f"{base}/datasets?q=x")

    # 404 of a path no page serves.
    answer = page.goto(f"{base}/no/such/page")
    assert answer is not None
    assert answer.status == 404
    _has_the_layout(page)
    page.click("main a:text-is('Datasets')")
    page.wait_for_url(f"{base}/datasets")

    # 400: a bad query value names the field.
    answer = page.goto(f"{base}/datasets/ds_missing?offset=many")
    assert answer is not None
    assert answer.status == 400
    assert "offset" in page.inner_text("main")
    _has_the_layout(page)

    # 403: a form posted with a stale CSRF token.
    page.goto(f"{base}/datasets")
    page.eval_on_selector("header.top form input[name=csrf_token]", "el => { el.value = 'stale'; }")
    with page.expect_navigation():
        page.click("header.top button:has-text('Sign out')")
    assert "CSRF" in page.inner_text("main .error")
    _has_the_layout(page)
    page.click("#error-back")
    page.wait_for_url(f"{base}/datasets")
    page.context.close()

    anonymous = browser.new_context().new_page()
    answer = anonymous.goto(f"{base}/no/such/page")
    assert answer is not None
    assert answer.status == 404
    assert anonymous.locator("header.top nav").count() == 0
    assert anonymous.get_attribute("#error-back", "href") == "/datasets"
    anonymous.context.close()
