"""Request ids: every answer carries one, and the server's log lines for a request name it, a 500's traceback
included, with other requests in flight at the same time.

The server is ``datamill serve`` in a subprocess (its own logging setup, its stderr read back); the 500 comes
from a fault injected into the dataset service before the command starts.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import adaption
import httpx
import pytest
from process_helpers import free_port, wait_healthy

_SERVE_WITH_FAULT = """
import sys
from datamill.services.datasets.catalog import DatasetService

_get = DatasetService.get

def _faulty_get(self, tenant_id, dataset_id):
    if dataset_id.startswith("ds_fault"):
        raise RuntimeError(f"injected fault reading {dataset_id}")
    return _get(self, tenant_id, dataset_id)

DatasetService.get = _faulty_get
from datamill.cli.serve import serve_command
serve_command(["--port", sys.argv[1]])
"""
_RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


def _records(text: str) -> list[str]:
    """The log's records: a line with a timestamp, and the lines (a traceback) that follow it."""
    records: list[str] = []
    for line in text.splitlines():
        if _RECORD_START.match(line) or not records:
            records.append(line)
        else:
            records[-1] += "\n" + line
    return records


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    env = {**os.environ, "DATAMILL_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVE_WITH_FAULT, str(port)], env=env, stdout=stdout, stderr=stderr
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, err)
        key = next(line.strip() for line in out.read_text().splitlines() if line.strip().startswith("dm_"))
        yield base, key, process, err
    finally:
        process.terminate()
        process.wait(30)


def test_a_500_among_concurrent_requests_is_logged_with_its_request_id(served) -> None:  # type: ignore[no-untyped-def]
    base, key, process, err = served
    ids = [f"req-{n}-{secrets.token_hex(4)}" for n in range(24)]
    faulty = set(ids[::6])  # 4 of the 24 hit the fault, the others are ordinary requests

    def call(request_id: str) -> tuple[str, int, str | None]:
        with adaption.Adaption(api_key=key, base_url=base, max_retries=0) as client:
            headers = {"X-Request-ID": request_id}
            try:
                if request_id in faulty:
                    client.datasets.get(f"ds_fault_{request_id}", extra_headers=headers)
                else:
                    raw = client.datasets.with_raw_response.list(extra_headers=headers)
                    return request_id, raw.status_code, raw.headers.get("x-request-id")
            except adaption.APIStatusError as error:
                return request_id, error.status_code, error.response.headers.get("x-request-id")
        raise AssertionError("a faulty request answered")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(call, ids))
    for request_id, status, echoed in answers:
        assert status == (500 if request_id in faulty else 200), (request_id, status)
        assert echoed == request_id
    process.terminate()
    process.wait(30)
    records = _records(err.read_text())
    for request_id in faulty:
        mine = [record for record in records if f"[{request_id}]" in record]
        tracebacks = [record for record in mine if "Traceback (most recent call last)" in record]
        assert len(tracebacks) == 1, "\n".join(records[-40:])
        assert f"RuntimeError: injected fault reading ds_fault_{request_id}" in tracebacks[0]
        assert " ERROR datamill.server.errors " in tracebacks[0]
        # Logged once: not again by uvicorn when Starlette re-raises it after the answer.
        fault = f"RuntimeError: injected fault reading ds_fault_{request_id}"
        assert sum(fault in record for record in records) == 1, "\n".join(records[-40:])
    for request_id in set(ids) - faulty:  # the access log names each ordinary request too
        assert any(f"[{request_id}]" in record and '"GET /api/v1/datasets' in record for record in records)
        assert not any(f"[{request_id}]" in record and "Traceback" in record for record in records)


def test_an_insane_or_missing_request_id_is_replaced(served) -> None:  # type: ignore[no-untyped-def]
    base, _key, _process, _err = served
    for sent in (None, "has spaces", "x" * 129, "new\\nline"):
        headers = {} if sent is None else {"X-Request-ID": sent}
        answer = httpx.get(f"{base}/healthz", headers=headers)
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"]), sent
    assert httpx.get(f"{base}/healthz", headers={"X-Request-ID": "abc:1.2_3-4"}).headers["x-request-id"] == (
        "abc:1.2_3-4"
    )
    refused = httpx.get(f"{base}/api/v1/datasets", headers={"X-Request-ID": "unauthenticated-1"})
    assert refused.status_code == 401
    assert refused.headers["x-request-id"] == "unauthenticated-1"
