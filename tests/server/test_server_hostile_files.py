"""The hostile file corpus through the Adaption API: each upload fails its dataset with the reader's message.

Uploading and completing answer 2xx or 4xx, never 5xx; the dataset ends ``failed`` with code E0100 (a file
that cannot be read), never E0199 (an internal error); launching a run on it is a 4xx. (The SDK uploads csv,
json, jsonl and parquet only, so the workbooks of the corpus are tested through the readers and the CLI.)
"""

from __future__ import annotations

from pathlib import Path

import adaption
import httpx
import pytest
from server_helpers import wait_for

HOSTILE = Path(__file__).parents[1] / "hostile" / "files"
# What each file's error must say (the corpus's own table is in tests/hostile/hostile_files.py).
EXPECTED = {
    "binary_junk.csv": "cannot detect the text encoding",
    "mixed_encoding.csv": "line 6: expected 2 columns",
    "unclosed_quote.csv": "expected 2 columns",
    "truncated.json": "invalid JSON at line 1",
    "scalar.json": "the top level of the JSON is a number",
    "lone_surrogate.jsonl": "line 1: invalid JSON",
    "not_objects.jsonl": "expected a JSON object on each line",
    "invalid.parquet": "not a valid Parquet file",
    "truncated.parquet": "not a valid Parquet file",
    "parquet_named.csv": "this is a Parquet file, not text",
    "csv_named.parquet": "not a valid Parquet file",
    "png_named.jsonl": "this is a PNG image, not text",
    "zip_named.json": "this is a zip archive",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_hostile_upload_fails_its_dataset_clearly(client: adaption.Adaption, name: str) -> None:
    done = client.datasets.upload_file(HOSTILE / name)
    status = wait_for(client, done.dataset_id)
    assert status.status == "failed"
    assert status.error_data is not None
    assert status.error_data.code == "E0100", status.error_data.message
    assert EXPECTED[name] in (status.error_data.message or "")
    with pytest.raises(adaption.APIStatusError) as caught:
        client.datasets.adapt(done.dataset_id, column_mapping={"prompt": "q"})
    assert 400 <= caught.value.status_code < 500


def test_deeply_nested_json_fails_without_exhausting_the_server(
    client: adaption.Adaption, tmp_path: Path
) -> None:
    path = tmp_path / "deep.json"
    path.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    done_id = client.datasets.upload_file(path).dataset_id
    status = wait_for(client, done_id)
    assert (status.status, status.error_data.code) == ("failed", "E0100")
    assert "more than 512 levels deep" in (status.error_data.message or "")
    assert client.datasets.get(done_id).status == "failed"  # the server still answers


def test_an_upload_past_the_size_limit_is_a_4xx(client: adaption.Adaption, tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:
        f.write(b"q,a\n" + b"x" * (2 << 20) + b",y\n")  # the test server takes at most 1 MiB
    with pytest.raises(httpx.HTTPStatusError) as caught:  # the SDK PUTs the bytes with plain httpx
        client.datasets.upload_file(path)
    assert caught.value.response.status_code == 413
