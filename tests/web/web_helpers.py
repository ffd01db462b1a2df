"""Helpers of the web app tests: finding the system chromium, launching it, signing in, screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

#: Where the README's screenshots live; the tests write there only with ``DATAMILL_UPDATE_SCREENSHOTS=1``.
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 860}


def chromium_path() -> str | None:
    """The system chromium, or None; in CI a missing browser is an error, never a skip."""
    found = (
        os.environ.get("DATAMILL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if found is None and os.environ.get("CI"):
        raise RuntimeError("CI must run the browser tests: install chromium (scripts/install-chromium.sh)")
    return found


@contextmanager
def new_browser(executable: str) -> Iterator[Any]:
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def sign_in(browser: Any, base_url: str, key: str) -> Any:
    """A new page of a new browser context, signed in with `key`."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base_url}/datasets")
    assert "/login" in page.url
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/datasets")
    return page


def screenshot_folder(scratch: Path) -> Path:
    """``docs/screenshots`` when ``DATAMILL_UPDATE_SCREENSHOTS=1``, else `scratch` (the tree stays clean)."""
    return DOCS_SCREENSHOTS if os.environ.get("DATAMILL_UPDATE_SCREENSHOTS") == "1" else scratch


class Screenshots:
    """Saves full-page screenshots as ``<name>.png`` in one folder (see `screenshot_folder`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, page: Any, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def drop_file(page: Any, selector: str, name: str, content: str) -> None:
    """Drop a file on `selector` the way a user's drag and drop does (a DataTransfer holding a File)."""
    transfer = page.evaluate_handle(
        """([name, text]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], name, { type: "text/csv" }));
            return transfer;
        }""",
        [name, content],
    )
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


@contextmanager
def session_client(base_url: str, key: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in to the web app with `key` (its cookie jar holds the session)."""
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=30) as client:
        answer = client.post("/login", data={"api_key": key, "next": "/datasets"})
        assert answer.status_code == 303, answer.text
        yield client


def csrf_of(client: httpx.Client, path: str = "/datasets") -> str:
    """The CSRF token a page of the session carries."""
    html = client.get(path).text
    marker = '<meta name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


#: For every chart under a selector: each legend item (a swatch and the label after it) and the boxes it must
#: stay clear of: the other legend items, the title (the first text) and the plot (bars, axes, labels).
_CHART_OVERLAPS = """(root) => {
    const box = (e) => e.getBoundingClientRect();
    const union = (a, b) => ({left: Math.min(a.left, b.left), right: Math.max(a.right, b.right),
                              top: Math.min(a.top, b.top), bottom: Math.max(a.bottom, b.bottom)});
    const meet = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    const found = {items: 0, overlaps: []};
    for (const svg of document.querySelectorAll(root + " svg")) {
        const title = svg.querySelector("text");
        const swatches = [...svg.querySelectorAll("rect")].filter((r) => !r.querySelector("title"));
        const labels = swatches.map((r) => r.nextElementSibling);
        const items = swatches.map(
            (r, i) => ({name: labels[i].textContent, box: union(box(r), box(labels[i]))}));
        const others = [...svg.querySelectorAll("rect, line, text")].filter(
            (e) => e !== title && !swatches.includes(e) && !labels.includes(e));
        const chart = title.textContent;
        found.items += items.length;
        items.forEach((item, i) => {
            items.slice(i + 1).forEach((other) => {
                if (meet(item.box, other.box)) found.overlaps.push(`${chart}: ${item.name} / ${other.name}`);
            });
            if (meet(item.box, box(title))) found.overlaps.push(`${chart}: ${item.name} / the title`);
            for (const e of others) {
                const what = `${e.tagName} ${e.textContent}`;
                if (meet(item.box, box(e))) found.overlaps.push(`${chart}: ${item.name} / ${what}`);
            }
        });
    }
    return found;
}"""


def chart_overlaps(page: Any, root: str) -> tuple[int, list[str]]:
    """The legend items of the charts under ``root`` and what each overlaps (nothing, when laid out well)."""
    found = page.evaluate(_CHART_OVERLAPS, root)
    return int(found["items"]), list(found["overlaps"])
