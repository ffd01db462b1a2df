"""Generation in headless Chromium: upload seeds, create a spec and watch its analysis, edit its YAML (a bad
edit shows the error at its YAML path, a good one makes version 2), launch a run on the fake model, watch it
finish, browse the samples, download the ZIP, evaluate the run and see the charts; and tenant isolation of
every generate page.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from runs_helpers import FAKE_MODEL, run_settings, runs_server
from web_helpers import Screenshots, chart_overlaps, csrf_of, session_client, sign_in

from conftest import RunningServer
from datamill.core.dataframer_models import EVALUATION_MODELS, RUN_MODELS, SPEC_MODELS

SEEDS = {
    "a.txt": "Hi, my order #1 arrived broken. Please refund. -- angry customer",
    "b.txt": "Thanks for the quick delivery, the laptop works great!",
    "c.txt": "Where is my parcel? It has been two weeks.",
}
MODEL = "anthropic/claude-sonnet-5-5-thinking"
WAIT_MS = 90_000


@pytest.fixture(scope="module")
def gen_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server with every Dataframer model name routed to the fake model (priced, so costs show)."""
    root = tmp_path_factory.mktemp("web-generate")
    entry = {"provider": "fake", "model": "{suffix}", "api_key_env": None, "base_url_env": None}
    names = {*RUN_MODELS, *SPEC_MODELS, *EVALUATION_MODELS}
    routes = {name: entry | {"input_price": 1.0, "output_price": 2.0} for name in names}
    path = root / "routes.yaml"
    path.write_text(yaml.safe_dump({"default_model": FAKE_MODEL, "routes": routes}), encoding="utf-8")
    with runs_server(root / "data", run_settings(routes_path=path, poll_s=0.1)) as running:
        yield running


def _state(page: Any, form: str) -> str:
    page.wait_for_function(
        f"() => ['valid', 'invalid'].includes(document.getElementById('{form}').dataset.state)"
    )
    return str(page.get_attribute(f"#{form}", "data-state"))


def _type_yaml(page: Any, text: str) -> str:
    page.evaluate("() => { document.getElementById('spec-editor').dataset.state = 'changed'; }")
    page.fill("#spec-yaml", text)
    return _state(page, "spec-editor")


def _edited(content: str, axes: list[dict[str, Any]]) -> str:
    doc = yaml.safe_load(content)
    doc["spec"]["data_property_variations"] = axes
    return yaml.safe_dump(doc, sort_keys=False)


SENTIMENT = {
    "property_name": "Sentiment",
    "property_values": ["positive", "negative"],
    "base_distributions": {"positive": 50, "negative": 50},
}


def test_generate_from_seeds_in_the_browser(
    gen_server: RunningServer, browser: Any, screenshot: Screenshots
) -> None:
    base = gen_server.base_url
    page = sign_in(browser, base, gen_server.new_key("acme-generate"))

    # Upload seeds: three files of a MULTI_FILE dataset.
    page.click("text=Generate")
    page.wait_for_url(f"{base}/generate")
    page.fill("#seed-name", "support-seeds")
    page.select_option("#seed-type", "MULTI_FILE")
    page.set_input_files(
        "#seed-files",
        [{"name": n, "mimeType": "text/plain", "buffer": body.encode()} for n, body in SEEDS.items()],
    )
    page.click("#seed-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/generate/seeds/sds_[^/]+$"))
    assert page.inner_text("#seed-file-count") == "3"
    assert "a.txt" in page.inner_text("#seed-files")

    # Create a spec: the API's rules show beside the form, then the analysis runs to SUCCEEDED.
    page.fill("#spec-name", "support-spec")
    page.uncheck('input[name="generate_distributions"]')
    page.check('input[name="generate_conditional_distributions"]')
    page.click("#spec-form button[type=submit]")
    assert _state(page, "spec-form") == "invalid"
    issue = page.inner_text('#spec-form [data-issue="generate_conditional_distributions"]')
    assert "requires generate_distributions to be true" in issue
    page.check('input[name="generate_distributions"]')
    page.uncheck('input[name="generate_conditional_distributions"]')
    page.select_option("#spec-model", MODEL)
    page.click("#spec-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/generate/specs/spec_[^/?]+$"))
    spec_url = page.url
    page.wait_for_selector("#spec-editor", timeout=WAIT_MS)  # the page reloads when the analysis ends
    assert page.inner_text("#spec-status") == "SUCCEEDED"
    assert page.inner_text("#spec-latest") == "1"

    # A bad edit names its YAML path and cannot be saved; a good one becomes version 2.
    original = page.input_value("#spec-yaml")
    bad = _edited(original, [SENTIMENT | {"base_distributions": {"positive": 70, "negative": 70}}])
    assert _type_yaml(page, bad) == "invalid"
    issues = page.inner_text("#yaml-issues")
    assert "spec.data_property_variations[0].base_distributions" in issues
    assert page.is_disabled("#spec-save")
    screenshot(page, "spec-editor")
    assert _type_yaml(page, _edited(original, [SENTIMENT])) == "valid"
    assert "Sentiment" in page.inner_text("#yaml-state")
    page.click("#spec-save")
    page.wait_for_url(f"{spec_url}?version=2")
    assert page.inner_text("#spec-latest") == "2"
    assert "Sentiment" in page.input_value("#spec-yaml")
    page.click("#spec-versions >> text=version 1")
    page.wait_for_url(f"{spec_url}?version=1")
    assert page.inner_text("#spec-version-yaml").strip() == original.strip()
    page.goto(spec_url)

    # Launch: a bad option gets the API's message; then 4 samples with a revision and a gate.
    page.fill("#run-samples", "0")
    page.click("#run-launch")
    assert _state(page, "run-form") == "invalid"
    assert "at least 1" in page.inner_text('#run-form [data-issue="number_of_samples"]')
    page.fill("#run-samples", "4")
    page.select_option("#run-generation_model", MODEL)
    page.check('input[name="revision_types"][value="coherence_flow"]')
    page.check('input[name="filtering_types"][value="structural"]')
    page.fill("#run-cycles", "1")
    page.fill("#run-novelty", "1")  # the fake model writes copies: the novelty gate would refuse them
    page.click("#run-launch")
    page.wait_for_url(re.compile(r".*/generate/runs/genrun_[^/?]+$"))
    run_url = page.url
    page.wait_for_selector('#gen-run[data-status="SUCCEEDED"]', timeout=WAIT_MS)
    assert page.inner_text("#gen-completed") == "4"
    assert page.inner_text("#gen-cost").startswith("$")
    assert page.is_hidden("#gen-cancel") or page.locator("#gen-cancel").count() == 0

    # Samples with their drawn properties.
    assert page.locator("#samples tbody tr").count() == 4
    props = page.inner_text("#samples")
    assert "Sentiment:" in props
    assert re.search(r"Sentiment:\s+(positive|negative)", props)
    screenshot(page, "generate-run")

    # The ZIP of every file.
    with page.expect_download(timeout=WAIT_MS) as download:
        page.click("#zip-download")
    with zipfile.ZipFile(Path(download.value.path())) as archive:
        names = archive.namelist()
    assert len([n for n in names if re.search(r"sample_\d+\.txt$", n)]) == 4
    assert any(n.endswith("run_summary.json") for n in names)

    # Evaluate: requested vs expected vs observed per property, the score and the areas.
    page.click("#eval-start")
    page.wait_for_url(re.compile(r".*/generate/evaluations/geneval_[^/]+$"))
    page.wait_for_selector(
        '#gen-eval:not([data-status="PENDING"]):not([data-status="PROCESSING"])', timeout=WAIT_MS
    )
    assert page.get_attribute("#gen-eval", "data-status") == "SUCCEEDED", page.inner_text("#gen-eval")
    chart = page.inner_html("#charts")
    assert "<svg" in chart
    assert "Sentiment" in chart
    for legend in ("requested", "expected (drawn)", "observed"):
        assert legend in chart
    legend_items, overlaps = chart_overlaps(page, "#charts")
    assert legend_items >= 3
    assert overlaps == []  # no legend item covers another, the title or the plot
    assert 0 <= float(page.inner_text("#conformance-score")) <= 100
    assert page.locator("#areas tbody tr").count() >= 1
    assert page.locator("#classifications tbody tr").count() == 4
    screenshot(page, "generate-evaluation")

    page.goto(f"{base}/generate")
    assert "support-seeds" in page.inner_text("#seeds")
    assert "support-spec" in page.inner_text("#specs")
    assert "SUCCEEDED" in page.inner_text("#gen-runs")
    screenshot(page, "generate")
    page.goto(run_url)
    page.context.close()


def _wait_json(client: httpx.Client, path: str, done: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        body: dict[str, Any] = client.get(path, headers={"accept": "application/json"}).json()
        if body["status"] in done or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def _owned_generation(server: RunningServer) -> list[str]:
    """A seed dataset, spec, run and evaluation of a new tenant, made through the pages; their page paths."""
    with session_client(server.base_url, server.new_key()) as client:
        headers = {"x-csrf-token": csrf_of(client), "accept": "application/json"}
        files = [("files", (name, io.BytesIO(body.encode()), "text/plain")) for name, body in SEEDS.items()]
        data = {"name": "private-seeds", "dataset_type": "MULTI_FILE"}
        seeds = client.post("/generate/seeds", data=data, files=files, headers=headers)
        assert seeds.status_code == 201, seeds.text
        body = {"name": "private-spec", "dataset_id": seeds.json()["id"]}
        spec = client.post("/generate/specs", json=body, headers=headers).json()
        assert (
            _wait_json(client, f"{spec['url']}/status.json", ("SUCCEEDED", "FAILED"))["status"] == "SUCCEEDED"
        )
        run = client.post(
            "/generate/runs",
            json={"spec_id": spec["id"], "number_of_samples": 2, "novelty_threshold": 1},
            headers=headers,
        )
        assert run.status_code == 201, run.text
        finished = _wait_json(
            client, f"{run.json()['url']}/progress.json", ("SUCCEEDED", "FAILED", "CANCELED")
        )
        assert finished["status"] == "SUCCEEDED"
        evaluation = client.post(f"{run.json()['url']}/evaluations", json={}, headers=headers)
        assert evaluation.status_code == 201, evaluation.text
        return [seeds.json()["url"], spec["url"], run.json()["url"], evaluation.json()["url"]]


def test_another_tenant_sees_nothing_of_the_generation(gen_server: RunningServer, browser: Any) -> None:
    seed_url, spec_url, run_url, evaluation_url = _owned_generation(gen_server)
    other = sign_in(browser, gen_server.base_url, gen_server.new_key())
    other.goto(f"{gen_server.base_url}/generate")
    listed = other.inner_text("main")
    assert "private-seeds" not in listed
    assert "private-spec" not in listed
    for path in (
        seed_url,
        spec_url,
        run_url,
        evaluation_url,
        f"{run_url}/zip.json",
        f"{spec_url}/status.json",
    ):
        answer = other.goto(f"{gen_server.base_url}{path}")
        assert answer is not None
        assert answer.status == 404, path
    other.context.close()
    with session_client(gen_server.base_url, gen_server.new_key()) as client:
        headers = {"x-csrf-token": csrf_of(client), "accept": "application/json"}
        spec_id, run_id = spec_url.rsplit("/", 1)[-1], run_url.rsplit("/", 1)[-1]
        tries = {
            f"{spec_url}/edit": {"content_yaml": "spec:\n  description: x\n"},
            f"{run_url}/cancel": None,
            f"{run_url}/evaluations": {},
            "/generate/runs": {"spec_id": spec_id, "number_of_samples": 1},
        }
        for path, body in tries.items():
            answer = client.post(path, json=body, headers=headers)
            assert answer.status_code == 404, (path, answer.text)
            assert spec_id in answer.json()["message"] or run_id in answer.json()["message"]


def test_a_saved_spec_keeps_the_users_comments_and_order(gen_server: RunningServer, browser: Any) -> None:
    key = gen_server.new_key()
    with session_client(gen_server.base_url, key) as client:
        headers = {"x-csrf-token": csrf_of(client), "accept": "application/json"}
        files = [("files", (name, io.BytesIO(body.encode()), "text/plain")) for name, body in SEEDS.items()]
        seeds = client.post(
            "/generate/seeds", data={"name": "s", "dataset_type": "MULTI_FILE"}, files=files, headers=headers
        )
        spec = client.post(
            "/generate/specs", json={"name": "commented", "dataset_id": seeds.json()["id"]}, headers=headers
        ).json()
        assert (
            _wait_json(client, f"{spec['url']}/status.json", ("SUCCEEDED", "FAILED"))["status"] == "SUCCEEDED"
        )
    page = sign_in(browser, gen_server.base_url, key)
    spec_url = f"{gen_server.base_url}{spec['url']}"
    page.goto(spec_url)
    server_metadata = yaml.safe_load(page.input_value("#spec-yaml"))["metadata"]
    written = (
        "# Support tickets: keep them short.\n"
        "spec:\n"
        "  requirements:  # listed before the description on purpose\n"
        "    - One ticket per sample\n"
        "  description: Customer support tickets\n"
        "  data_property_variations:\n"
        "    - property_name: Sentiment\n"
        "      property_values: [positive, negative]\n"
        "      base_distributions: {positive: 70, negative: 30}  # mostly happy\n"
        "metadata:\n"
        "  dataset_id: forged\n"
    )
    assert _type_yaml(page, written) == "valid"
    page.click("#spec-save")
    page.wait_for_url(f"{spec_url}?version=2")
    saved = page.input_value("#spec-yaml")
    assert saved.startswith(written[: written.index("metadata:")])  # comments, order and flow style kept
    assert yaml.safe_load(saved)["metadata"] == server_metadata  # the server-owned part is the server's
    page.context.close()


def test_delete_seeds_specs_and_runs_from_their_pages(gen_server: RunningServer, browser: Any) -> None:
    key = gen_server.new_key()
    with session_client(gen_server.base_url, key) as client:
        headers = {"x-csrf-token": csrf_of(client), "accept": "application/json"}
        files = [("files", (name, io.BytesIO(body.encode()), "text/plain")) for name, body in SEEDS.items()]
        data = {"name": "old-seeds", "dataset_type": "MULTI_FILE"}
        seeds = client.post("/generate/seeds", data=data, files=files, headers=headers).json()
        body = {"name": "old-spec", "dataset_id": seeds["id"]}
        spec = client.post("/generate/specs", json=body, headers=headers).json()
        assert (
            _wait_json(client, f"{spec['url']}/status.json", ("SUCCEEDED", "FAILED"))["status"] == "SUCCEEDED"
        )
        body = {"spec_id": spec["id"], "number_of_samples": 1, "novelty_threshold": 1}
        run = client.post("/generate/runs", json=body, headers=headers).json()
        assert (
            _wait_json(client, f"{run['url']}/progress.json", ("SUCCEEDED", "FAILED"))["status"]
            == "SUCCEEDED"
        )
    base = gen_server.base_url
    page = sign_in(browser, base, key)
    page.on("dialog", lambda dialog: dialog.accept())

    # Seeds a spec uses are kept, with the reason beside the button.
    page.goto(f"{base}{seeds['url']}")
    page.click("#seed-delete")
    page.wait_for_function("() => document.getElementById('seed-delete-error').textContent !== ''")
    assert "used by 1 spec" in page.inner_text("#seed-delete-error")

    # The run, then the spec, then the seeds: each page leads to where its parent is listed.
    page.goto(f"{base}{run['url']}")
    page.click("#gen-delete")
    page.wait_for_url(f"{base}{spec['url']}")
    assert page.locator("#gen-runs").count() == 0
    page.click("#spec-delete")
    page.wait_for_url(f"{base}/generate")
    assert "old-spec" not in page.inner_text("main")
    page.goto(f"{base}{seeds['url']}")
    page.click("#seed-delete")
    page.wait_for_url(f"{base}/generate")
    assert "old-seeds" not in page.inner_text("main")
    for path in (seeds["url"], spec["url"], run["url"]):
        answer = page.goto(f"{base}{path}")
        assert answer is not None
        assert answer.status == 404, path
    page.context.close()
