"""``datamill serve``, ``datamill keys`` and ``datamill tenants``; ingest resuming after a restart."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import adaption
import click
import httpx
import pytest
from click.testing import CliRunner
from server_helpers import wait_for, write_csv

from conftest import running_server
from datamill.cli.keys import keys_group, tenants_group
from datamill.services.settings.server import ServerSettings
from datamill.store import Dataset, Store

# The commands are invoked directly (main.py only registers them), so no other command is imported.
cli = click.Group(commands=[keys_group, tenants_group])


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("DATAMILL_HOME", str(tmp_path / "home"))
    return CliRunner()


def test_keys_and_tenants_commands(runner: CliRunner, tmp_path: Path) -> None:
    made = runner.invoke(cli, ["keys", "create", "--tenant", "acme", "--credits", "10"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("dm_")
    assert "tenant 'acme' (10 credits)" in made.stderr
    settings = ServerSettings.from_env()
    assert settings.data_dir == tmp_path / "home"
    listed = runner.invoke(cli, ["keys", "list"])
    assert key[:11] in listed.stdout
    credited = runner.invoke(cli, ["tenants", "credit", "acme", "5"])
    assert "now has 15 credits" in credited.stdout
    assert "acme" in runner.invoke(cli, ["tenants", "list"]).stdout
    again = runner.invoke(cli, ["keys", "create", "--tenant", "acme", "--credits", "1"])
    assert again.exit_code == 2
    assert "already exists" in again.stderr
    assert runner.invoke(cli, ["keys", "revoke", key[:11]]).exit_code == 0
    assert runner.invoke(cli, ["keys", "revoke", key[:11]]).exit_code != 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_works_with_no_configuration(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "DATAMILL_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    serve = f"from datamill.cli.serve import serve_command; serve_command(['--port', '{port}'])"
    command = [sys.executable, "-c", serve]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        key = next(line.strip() for line in lines if line.strip().startswith("dm_"))
        with adaption.Adaption(api_key=key, base_url=base, max_retries=0) as client:
            done = client.datasets.upload_file(write_csv(tmp_path / "data.csv", 3))
            assert wait_for(client, done.dataset_id).row_count == 3
        assert (tmp_path / "home" / "datamill.db").is_file()
        assert any((tmp_path / "home" / "blobs").rglob("data.csv"))
    finally:
        process.terminate()
        process.wait(30)
        reader.join(5)
        process.stdout.close()  # type: ignore[union-attr]


def test_an_unread_upload_is_read_after_a_restart(tmp_path: Path) -> None:
    settings = ServerSettings.for_data_dir(tmp_path)
    with running_server(settings) as first:
        key = first.new_key()
        client = first.client(key=key)
        done = client.datasets.upload_file(write_csv(tmp_path / "data.csv", 4))
        wait_for(client, done.dataset_id)
    # Put the dataset back where a stop between upload/complete and ingest leaves it.
    store = Store.from_url(settings.database_url)
    with store.session() as session:
        row = session.get(Dataset, done.dataset_id)
        assert row is not None
        row.status, row.ingest_state, row.row_count = "pending", "uploaded", None
    store.close()
    with running_server(settings) as second:
        client = second.client(key=key)  # keys and data survive the restart
        status = wait_for(client, done.dataset_id)
        assert (status.status, status.row_count) == ("awaiting_input", 4)
