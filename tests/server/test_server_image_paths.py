"""On the server an image cell that names a file is refused, never read: the row is rejected with the reason.

The run goes through the official SDK against the real server; the command line keeps reading paths (see
``tests/test_images_in_requests.py``).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import adaption
import pytest
from runs_helpers import runs_server, upload, wait_done
from server_helpers import error_body

from datamill.steps.images import LOCAL_FILES_REFUSED

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 4
SECRET = "datamill-secret-7f3a9c"


def test_image_cells_naming_files_reject_their_rows_on_the_server(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_text(SECRET, encoding="utf-8")
    picture = "data:image/png;base64," + base64.b64encode(PNG).decode()
    cells = [picture, "/etc/hostname", str(secret), "secret.png"]
    rows = [{"id": i, "question": f"What is in picture {i}?", "picture": c} for i, c in enumerate(cells)]
    with runs_server(tmp_path / "data") as srv:
        client = srv.client()
        dataset_id = upload(client, tmp_path / "pictures.jsonl", rows)
        launched = client.datasets.adapt(
            dataset_id, column_mapping={"prompt": "question", "image": "picture"}
        )
        done = wait_done(client, dataset_id)
        assert (done.status, done.error_data) == ("succeeded", None)
        output = client.datasets.download(dataset_id, file_format="jsonl").text()
        run_dir = srv.settings.data_dir / "runs" / str(launched.run_id)
        rejected = [
            json.loads(line)
            for path in sorted((run_dir / "rejected").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()
        ]

    kept = [json.loads(line) for line in output.splitlines()]
    assert [row["id"] for row in kept] == [0]
    assert {(r["row_number"], r["step"], r["reason"]) for r in rejected} == {
        (n, "column_mapping", LOCAL_FILES_REFUSED) for n in (2, 3, 4)
    }
    hostname = Path("/etc/hostname").read_text(encoding="utf-8").strip()
    everything = output + json.dumps(rejected)
    assert SECRET not in everything
    assert base64.b64encode(SECRET.encode()).decode() not in everything
    assert f'"{hostname}"' not in everything


def test_a_dataset_whose_sampled_rows_all_name_files_is_a_400(tmp_path: Path) -> None:
    rows = [{"id": i, "question": f"What is in picture {i}?", "picture": "/etc/hostname"} for i in range(3)]
    with runs_server(tmp_path / "data") as srv:
        client = srv.client()
        dataset_id = upload(client, tmp_path / "pictures.jsonl", rows)
        for estimate in (True, False):
            with pytest.raises(adaption.BadRequestError) as caught:
                client.datasets.adapt(
                    dataset_id, column_mapping={"prompt": "question", "image": "picture"}, estimate=estimate
                )
            (issue,) = error_body(caught.value)["errors"]
            assert issue["field"] == "column_mapping"
            assert LOCAL_FILES_REFUSED in issue["reason"]
        assert client.datasets.get(dataset_id).run_id is None
