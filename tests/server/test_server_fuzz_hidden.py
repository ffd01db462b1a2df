"""Schemathesis fuzzing of the routes hidden from ``/openapi.json``: the upload link and the download link.

Neither route is in the published schema (the SDKs reach them only through the URLs the API answers), so
the schema-driven suites never see them. This suite describes them in an explicit OpenAPI document and
fuzzes them against a loopback server: path values, tokens and query parameters (including ones the
routes ignore, such as an older link format's ``expires``), and bodies. One time in two the path and token
are real (a fresh upload link, a signed link to a stored file), so requests reach past the signature check.
Every answer must be something other than a server error, every error must be the API's JSON error shape,
and every success must match the response the document declares.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import adaption
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from conftest import RunningServer, running_server
from datamill.server.downloads_signed import sign_download
from datamill.services.generation.common import DownloadTarget
from datamill.services.settings.server import ServerSettings

EXAMPLES = int(os.environ.get("DATAMILL_FUZZ_EXAMPLES", "25"))

_ERROR = {"type": "object", "required": ["error"]}
_STRING = {"type": "string"}
_REFUSED = {"description": "refused", "content": {"application/json": {"schema": _ERROR}}}
_BYTES = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}

#: The hidden routes as the server serves them.
HIDDEN_SCHEMA: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "datamill hidden routes", "version": "1"},
    "paths": {
        "/_uploads/{upload_id}": {
            "put": {
                "parameters": [
                    {"name": "upload_id", "in": "path", "required": True, "schema": _STRING},
                    {"name": "token", "in": "query", "required": False, "schema": _STRING},
                    {"name": "expires", "in": "query", "required": False, "schema": _STRING},
                    {"name": "signature", "in": "query", "required": False, "schema": _STRING},
                ],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                    },
                },
                "responses": {
                    "200": {
                        "description": "received",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["upload_id", "size_bytes", "sha256"],
                                    "properties": {
                                        "upload_id": _STRING,
                                        "size_bytes": {"type": "integer", "minimum": 0},
                                        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                                    },
                                    "additionalProperties": False,
                                }
                            }
                        },
                    },
                    "default": {
                        "description": "refused",
                        "content": {"application/json": {"schema": _ERROR}},
                    },
                },
            }
        },
        "/_downloads/{token}": {
            "get": {
                "parameters": [{"name": "token", "in": "path", "required": True, "schema": _STRING}],
                "responses": {
                    "200": {"description": "the file", "content": {"text/csv": {"schema": _STRING}}},
                    "default": {
                        "description": "refused",
                        "content": {"application/json": {"schema": _ERROR}},
                    },
                },
            }
        },
    },
}


@pytest.fixture(scope="module")
def hidden_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = ServerSettings.for_data_dir(
        tmp_path_factory.mktemp("fuzz-hidden"), max_upload_bytes=1 << 16, rate_limit_per_minute=0
    )
    with running_server(settings) as running:
        yield running


def _upload_link(client: adaption.Adaption) -> tuple[str, str]:
    """A fresh upload link's ``(upload_id, token)``."""
    created = client.datasets.create(source={"name": "data.csv"})
    assert created.upload_instructions is not None
    parts = urlsplit(created.upload_instructions.url)
    return parts.path.rsplit("/", 1)[1], parse_qs(parts.query)["token"][0]


def _download_token(server: RunningServer, key: str, *, stored: bool) -> str:
    """A signed download token to a stored file (or to a key nothing is stored under)."""
    if stored:
        writer = server.context.blobs.open_writer(key)
        writer.write(b"question,answer\nq,a\n")
        writer.commit()
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    return sign_download(server.context.signer, DownloadTarget(key, "data.csv", "text/csv"), expires)


def test_no_hidden_route_answers_a_server_error(hidden_server: RunningServer) -> None:
    client = hidden_server.client()
    real_downloads = [
        _download_token(hidden_server, "fuzz/stored.csv", stored=True),
        _download_token(hidden_server, "fuzz/absent.csv", stored=False),
    ]
    schema = schemathesis.openapi.from_dict(HIDDEN_SCHEMA)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 2
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    checked: Counter[str] = Counter()

    for operation in operations:

        @settings(
            max_examples=EXAMPLES * 2,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.generate],
        )
        @given(case=operation.as_strategy(), real=st.booleans(), which=st.integers(0, 1))  # type: ignore[attr-defined]
        def check(case: schemathesis.Case, real: bool, which: int) -> None:
            if real and case.path.startswith("/_uploads"):
                upload_id, token = _upload_link(client)
                case.path_parameters = {"upload_id": upload_id}
                case.query = {**(case.query or {}), "token": token}
            elif real:
                case.path_parameters = {"token": real_downloads[which]}
            response = case.call(base_url=hidden_server.base_url, timeout=30)
            statuses[response.status_code] += 1
            described = (
                f"{case.method} {case.formatted_path} query={case.query!r:.200} body={case.body!r:.100}"
            )
            if response.status_code >= 500:
                failures.append(f"{described} -> {response.status_code}: {response.text[:300]}")
                return
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except (AssertionError, FailureGroup) as mismatch:
                failures.append(f"{described}: answer off its schema: {mismatch}"[:600])
            checked[f"{case.method} {response.status_code}"] += 1

        check()

    assert not failures, "\n".join(failures[:20])
    print(f"hidden routes, statuses: {dict(sorted(statuses.items()))}; checked: {dict(checked)}")
    assert checked["PUT 200"] > 0  # real links were reached and took a file ...
    assert checked["GET 200"] > 0  # ... a real download was served ...
    assert statuses[403] > 0  # ... and altered links were refused as such
