from __future__ import annotations

from pathlib import Path

from server_helpers import wait_for, write_csv


def test_upload_smoke(client, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tiny.csv", 3)
    done = client.datasets.upload_file(path)
    print(done)
    status = wait_for(client, done.dataset_id)
    print(status)
    ds = client.datasets.get(done.dataset_id)
    print(ds)
    print(client.datasets.list().datasets)
