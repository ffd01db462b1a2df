"""Publish through the official SDK: to a loopback stand-in for the Hugging Face Hub, to allowed local and
fsspec paths, and the refusals (paths outside the roots, targets not configured, kaggle, no output)."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import adaption
import fsspec
import httpx
import pyarrow.parquet as pq
import pytest
from server_helpers import error_body, fields_of, qa_rows, wait_for, write_rows

from conftest import RunningServer, running_server
from datamill.dataio import read_all
from datamill.pipelines.checkpoint import Checkpoint
from datamill.services.settings.server import ServerSettings
from datamill.store import Dataset

HF_TOKEN = "hf_test_token"
MAPPING = {"prompt": "question", "completion": "answer"}


@dataclass
class HubStub:
    """The four Hub routes `huggingface_hub` calls to create a dataset repo and commit files to it."""

    url: str = ""
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # repo_info after a refused create: there is no such repo
                stub.calls.append(("GET", self.path, self.headers.get("Authorization")))
                self._answer(404, {"error": "Repository not found"})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                stub.calls.append(("POST", path, self.headers.get("Authorization")))
                self._answer(*stub.route(path, raw))

        return Handler

    def route(self, path: str, raw: bytes) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if path == "/api/repos/create":
            body = json.loads(raw)
            if body["name"] == "forbidden":
                return 403, {"error": "You don't have the rights to create a dataset under this namespace"}
            return 200, {"url": f"{self.url}/datasets/{body['organization']}/{body['name']}"}
        if path == "/api/validate-yaml":
            return 200, {"errors": [], "warnings": []}
        if parts[:2] == ["api", "datasets"] and parts[-2] == "preupload":
            files = json.loads(raw)["files"]
            return 200, {
                "files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
            }
        if parts[:2] == ["api", "datasets"] and parts[-2] == "commit":
            repo = "/".join(parts[2:-2])
            for line in raw.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    value = item["value"]
                    self.files.setdefault(repo, {})[value["path"]] = base64.b64decode(value["content"])
            return 200, {"commitUrl": f"{self.url}/datasets/{repo}/commit/{'a' * 40}", "commitOid": "a" * 40}
        return 404, {"error": f"no route {path}"}


@pytest.fixture(scope="module")
def hub() -> Iterator[HubStub]:
    stub = HubStub()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), stub.handler())
    stub.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield stub
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("published")


@pytest.fixture(scope="module")
def pub_server(
    tmp_path_factory: pytest.TempPathFactory, hub: HubStub, roots: Path
) -> Iterator[RunningServer]:
    """A server configured for the Hub stub and for two path roots: a directory and ``memory://pub``."""
    env = {
        "DATAMILL_HF_ENDPOINT": hub.url,
        "DATAMILL_HF_TOKEN": HF_TOKEN,
        "DATAMILL_PUBLISH_ROOTS": f"{roots}, memory://pub",
        "DATAMILL_MODEL": "fake/publish",  # runs and custom evaluations use the fake model
        "DATAMILL_WORKER_POLL_S": "0.1",
    }
    settings = ServerSettings.for_data_dir(tmp_path_factory.mktemp("pub"))
    with running_server(settings, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server configured for no publish target at all."""
    with running_server(ServerSettings.for_data_dir(tmp_path_factory.mktemp("bare")), env={}) as running:
        yield running


@pytest.fixture
def sdk(pub_server: RunningServer) -> adaption.Adaption:
    return pub_server.client()


def _raw_dataset(client: adaption.Adaption, folder: Path, rows: int = 3) -> str:
    path = write_rows(folder / "qa.csv", qa_rows(rows))
    done = client.datasets.upload_file(path, processing_mode="raw", column_mapping=MAPPING)
    assert wait_for(client, done.dataset_id).status == "succeeded"
    return done.dataset_id


def _counting_client(server: RunningServer) -> tuple[adaption.Adaption, list[str]]:
    """An SDK client with its default retries, and the list of requests it sends."""
    sent: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda request: sent.append(request.url.path)]})
    client = adaption.Adaption(api_key=server.new_key(), base_url=server.base_url, http_client=http)
    server._clients.append(client)
    return client, sent


def test_publish_to_the_hub_uploads_the_rows_and_a_card(
    sdk: adaption.Adaption, hub: HubStub, tmp_path: Path
) -> None:
    dataset_id = _raw_dataset(sdk, tmp_path)
    done = sdk.datasets.publish(dataset_id, target="huggingface", target_spec={"repo_id": "me/qa-set"})
    assert done.status == "succeeded"
    assert done.publish_id.startswith("pub_")
    assert done.location == f"{hub.url}/datasets/me/qa-set"
    files = hub.files["me/qa-set"]
    assert set(files) == {"README.md", "data/train-00000-of-00001.parquet"}
    table = pq.read_table(io.BytesIO(files["data/train-00000-of-00001.parquet"]))
    assert table.to_pylist() == qa_rows(3)
    card = files["README.md"].decode()
    assert card.startswith("---\n")
    assert "path: data/train*" in card
    assert f"from dataset `{dataset_id}`" in card
    assert '"column_mapping"' in card
    assert {auth for _, _, auth in hub.calls} == {f"Bearer {HF_TOKEN}"}


def test_a_run_output_is_published_with_its_request_and_evaluation(
    pub_server: RunningServer, sdk: adaption.Adaption, roots: Path, tmp_path: Path
) -> None:
    done = sdk.datasets.upload_file(write_rows(tmp_path / "qa.csv", qa_rows(2)))
    wait_for(sdk, done.dataset_id)
    run_id = "run_published"
    run_dir = pub_server.settings.data_dir / "runs" / run_id
    output = [
        {"original_prompt": "q0", "enhanced_prompt": "Q0?"},
        {"original_prompt": "q1", "enhanced_prompt": "Q1?"},
    ]
    Checkpoint(run_dir, "fingerprint").save(0, output, [])
    (run_dir / "request.json").write_text(
        json.dumps({"recipe_specification": {"recipes": {"deduplication": True}}})
    )
    (run_dir / "evaluation.json").write_text(
        json.dumps({"quality": {"grade_before": "C", "grade_after": "B"}})
    )
    with pub_server.context.store.session() as session:
        row = session.get(Dataset, done.dataset_id)
        assert row is not None
        row.run_id, row.status = run_id, "succeeded"
    published = sdk.datasets.publish(
        done.dataset_id, target="local", target_spec={"path": "team/qa", "file_format": "jsonl"}
    )
    target = roots / "team" / "qa"
    assert published.location == str(target)
    assert read_all(target / "data" / "train.jsonl").to_pylist() == output
    card = (target / "README.md").read_text()
    assert '"deduplication": true' in card
    assert "| grade_after | B |" in card
    assert run_id in card


def test_an_adapted_dataset_is_published_with_its_evaluations(
    sdk: adaption.Adaption, hub: HubStub, tmp_path: Path
) -> None:
    done = sdk.datasets.upload_file(write_rows(tmp_path / "qa.jsonl", qa_rows(4)))
    wait_for(sdk, done.dataset_id)
    launched = sdk.datasets.adapt(done.dataset_id, column_mapping=MAPPING)
    finished = sdk.datasets.wait_for_completion(
        done.dataset_id, initial_interval=0.1, max_interval=0.3, timeout=60
    )
    assert finished.status == "succeeded"
    made = sdk.datasets.custom_evals.create(done.dataset_id, judge_prompt="Is it concise?", name="concise")
    deadline = time.monotonic() + 30
    judged = made
    while judged.status in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.02)
        judged = sdk.datasets.custom_evals.get(made.custom_eval_id, dataset_id=done.dataset_id)
    assert (judged.status, judged.run_id, judged.scored_rows) == ("succeeded", launched.run_id, 4)
    assert judged.score_after is not None
    sdk.datasets.publish(done.dataset_id, target="huggingface", target_spec={"repo_id": "me/adapted"})
    files = hub.files["me/adapted"]
    table = pq.read_table(io.BytesIO(files["data/train-00000-of-00001.parquet"]))
    assert table.num_rows == 4
    assert {"original_prompt", "enhanced_prompt"} <= set(table.column_names)
    card = files["README.md"].decode()
    assert launched.run_id in card
    assert '"column_mapping"' in card
    assert "| grade_after |" in card
    assert "| concise | Is it concise? |" in card


def test_publish_to_an_fsspec_root(sdk: adaption.Adaption, tmp_path: Path) -> None:
    dataset_id = _raw_dataset(sdk, tmp_path, rows=2)
    done = sdk.datasets.publish(dataset_id, target="fsspec", target_spec={"path": "memory://pub/sets/a"})
    assert done.location == "memory://pub/sets/a"
    memory = fsspec.filesystem("memory")
    with memory.open("/pub/sets/a/data/train-00000-of-00001.parquet", "rb") as handle:
        assert pq.read_table(handle).to_pylist() == qa_rows(2)
    assert memory.exists("/pub/sets/a/README.md")


@pytest.mark.parametrize("path", ["../escaped", "team/../../escaped", "/tmp/elsewhere", "memory://other/x"])
def test_paths_outside_the_roots_are_refused(
    sdk: adaption.Adaption, roots: Path, tmp_path: Path, path: str
) -> None:
    dataset_id = _raw_dataset(sdk, tmp_path)
    with pytest.raises(adaption.BadRequestError) as caught:
        sdk.datasets.publish(dataset_id, target="local", target_spec={"path": path})
    assert fields_of(caught.value) == ["target_spec.path"]
    assert not (roots.parent / "escaped").exists()


def test_a_symlink_out_of_a_root_is_refused(sdk: adaption.Adaption, roots: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (roots / "link").symlink_to(outside)
    dataset_id = _raw_dataset(sdk, tmp_path)
    with pytest.raises(adaption.BadRequestError):
        sdk.datasets.publish(dataset_id, target="local", target_spec={"path": "link/set"})
    assert list(outside.iterdir()) == []


def test_targets_that_are_not_configured_answer_once_with_what_to_set(
    bare_server: RunningServer, tmp_path: Path
) -> None:
    client, sent = _counting_client(bare_server)
    dataset_id = _raw_dataset(client, tmp_path)
    sent.clear()
    with pytest.raises(adaption.BadRequestError) as hf:
        client.datasets.publish(dataset_id, target="huggingface", target_spec={"repo_id": "me/x"})
    assert "DATAMILL_HF_TOKEN" in error_body(hf.value)["message"]
    assert hf.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(adaption.BadRequestError) as local:
        client.datasets.publish(dataset_id, target="local", target_spec={"path": "x"})
    assert "DATAMILL_PUBLISH_ROOTS" in error_body(local.value)["message"]
    assert sent == [f"/api/v1/datasets/{dataset_id}/publish"] * 2


def test_kaggle_is_not_implemented_and_tried_once(pub_server: RunningServer, tmp_path: Path) -> None:
    client, sent = _counting_client(pub_server)
    dataset_id = _raw_dataset(client, tmp_path)
    sent.clear()
    with pytest.raises(adaption.InternalServerError) as caught:
        client.datasets.publish(dataset_id, target="kaggle", target_spec={"slug": "me/x"})
    assert caught.value.status_code == 501
    assert "huggingface" in error_body(caught.value)["message"]
    assert len(sent) == 1


def test_a_hub_that_refuses_answers_502_once(pub_server: RunningServer, hub: HubStub, tmp_path: Path) -> None:
    client, sent = _counting_client(pub_server)
    dataset_id = _raw_dataset(client, tmp_path)
    sent.clear()
    with pytest.raises(adaption.InternalServerError) as caught:
        client.datasets.publish(dataset_id, target="huggingface", target_spec={"repo_id": "me/forbidden"})
    assert caught.value.status_code == 502
    assert "403" in error_body(caught.value)["message"]
    assert len(sent) == 1
    assert "me/forbidden" not in hub.files


def test_bad_requests_and_datasets_without_output(
    pub_server: RunningServer, sdk: adaption.Adaption, tmp_path: Path
) -> None:
    dataset_id = _raw_dataset(sdk, tmp_path)
    with pytest.raises(adaption.BadRequestError) as caught:
        sdk.datasets.publish(dataset_id, target="huggingface", target_spec={"repo_id": "no spaces/allowed"})
    assert fields_of(caught.value) == ["target_spec.repo_id"]
    with pytest.raises(adaption.BadRequestError) as caught:
        sdk.datasets.publish(dataset_id, target="dropbox")  # type: ignore[arg-type]
    assert fields_of(caught.value) == ["target"]
    waiting = sdk.datasets.upload_file(write_rows(tmp_path / "adapt.csv", qa_rows(2))).dataset_id
    assert wait_for(sdk, waiting).status == "awaiting_input"
    with pytest.raises(adaption.UnprocessableEntityError) as caught:
        sdk.datasets.publish(waiting, target="local", target_spec={"path": "never"})
    assert "datasets.adapt" in error_body(caught.value)["message"]
    with pytest.raises(adaption.NotFoundError):
        pub_server.client().datasets.publish(dataset_id, target="local", target_spec={"path": "stolen"})


def test_export_links_list_where_the_dataset_was_published(
    sdk: adaption.Adaption, pub_server: RunningServer, hub: HubStub, roots: Path, tmp_path: Path
) -> None:
    dataset_id = _raw_dataset(sdk, tmp_path)
    before = sdk.datasets.get_export_links(dataset_id)
    assert (before.huggingface, before.kaggle, before.google_sheets) == (None, None, None)
    assert before.model_extra == {"paths": []}
    sdk.datasets.publish(dataset_id, target="huggingface", target_spec={"repo_id": "me/linked"})
    sdk.datasets.publish(dataset_id, target="local", target_spec={"path": "linked/one"})
    sdk.datasets.publish(dataset_id, target="fsspec", target_spec={"path": "memory://pub/linked"})
    links = sdk.datasets.get_export_links(dataset_id)
    assert links.huggingface == f"{hub.url}/datasets/me/linked"
    assert (links.kaggle, links.google_sheets) == (None, None)
    assert links.model_extra == {"paths": [str(roots / "linked" / "one"), "memory://pub/linked"]}
    with pytest.raises(adaption.NotFoundError):  # another tenant sees no such dataset
        pub_server.client().datasets.get_export_links(dataset_id)


def test_a_refused_publish_leaves_no_export_link(sdk: adaption.Adaption, tmp_path: Path) -> None:
    dataset_id = _raw_dataset(sdk, tmp_path)
    with pytest.raises(adaption.APIStatusError):
        sdk.datasets.publish(dataset_id, target="huggingface", target_spec={"repo_id": "me/forbidden"})
    assert sdk.datasets.get_export_links(dataset_id).huggingface is None
