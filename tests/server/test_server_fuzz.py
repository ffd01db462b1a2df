"""Schemathesis fuzzing of the server's OpenAPI schema against a loopback server: no 5xx, ever, and every
success answered in the shape the schema declares.

Every operation in ``/openapi.json`` (the Adaption API and the Dataframer API) gets generated requests (valid
and invalid bodies, odd path and query values) with a tenant's key; the server must answer each with
something other than a server error, and the body of each 2xx answer must match the response model the
operation declares (schemathesis' response-schema conformance check).
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from pathlib import Path

import hypothesis
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance
from server_helpers import wait_for, write_csv

from conftest import RunningServer

#: Examples per operation: enough to reach the validation branches, few enough for CI (and under the rate
#: limit); ``DATAMILL_FUZZ_EXAMPLES=200`` runs a deeper search locally.
EXAMPLES = int(os.environ.get("DATAMILL_FUZZ_EXAMPLES", "25"))


def _operations(server: RunningServer) -> list[object]:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_no_operation_answers_a_server_error(server: RunningServer, tmp_path: Path) -> None:
    # One tenant with a real dataset, so the reads of a dataset by id answer 200 (and their bodies are
    # checked) when the generated id is swapped for the real one.
    tenant = f"fuzz-{secrets.token_hex(4)}"
    client = server.client(tenant)
    dataset_id = client.datasets.upload_file(write_csv(tmp_path / "d.csv", 5)).dataset_id
    wait_for(client, dataset_id)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    bodies: Counter[str] = Counter()  # 2xx bodies checked against their schema, per operation
    operations = _operations(server)
    assert len(operations) > 20  # the whole API is in the schema

    headers: dict[str, str] = {}
    for operation in operations:
        # A key per operation: one key for all of them would soon be rate limited, and 429s check nothing.
        headers["Authorization"] = f"Bearer {server.new_key(tenant)}"

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.generate],
        )
        @given(case=operation.as_strategy(), real=st.booleans())  # type: ignore[attr-defined]
        def check(case: schemathesis.Case, real: bool) -> None:
            # Generated auth headers would only be refused; rotating a key revokes it, so that gets its own.
            own = {"Authorization": f"Bearer {server.new_key()}"} if "rotate" in case.path else headers
            if real and case.method == "GET" and "dataset_id" in (case.path_parameters or {}):
                case.path_parameters = {**(case.path_parameters or {}), "dataset_id": dataset_id}
            case.headers = {**(case.headers or {}), **own}
            response = case.call(timeout=30)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}\n"
                    f"  body={case.body!r:.300} query={case.query!r:.200} path={case.path_parameters!r:.200}"
                )
            elif response.status_code < 300:
                try:
                    case.validate_response(response, checks=[response_schema_conformance])
                except (AssertionError, FailureGroup) as mismatch:
                    failures.append(
                        f"{case.method} {case.formatted_path}: body off its schema: {mismatch}"[:800]
                    )
                bodies[case.operation.label] += 1

        check()

    assert not failures, "\n".join(failures[:20])
    print(f"{len(operations)} operations, statuses: {dict(sorted(statuses.items()))}, bodies: {dict(bodies)}")
    # The requests reached the handlers: some succeeded and some were refused as bad input.
    assert any(200 <= status < 300 for status in statuses)
    assert statuses[400] + statuses[422] > 0
    # The schema check ran on many operations' answers, reads of the real dataset among them.
    assert len(bodies) > 5
    assert bodies["GET /api/v1/datasets/{dataset_id}"] > 0
