"""Schemathesis fuzzing of the server's OpenAPI schema against a loopback server: no 5xx, ever.

Every operation in ``/openapi.json`` (the Adaption API and the Dataframer API) gets generated requests (valid
and invalid bodies, odd path and query values) with a tenant's key; the server must answer each with
something other than a server error.
"""

from __future__ import annotations

import os
from collections import Counter

import hypothesis
import schemathesis
from hypothesis import HealthCheck, given, settings

from conftest import RunningServer

#: Examples per operation: enough to reach the validation branches, few enough for CI (and under the rate
#: limit); ``DATAMILL_FUZZ_EXAMPLES=200`` runs a deeper search locally.
EXAMPLES = int(os.environ.get("DATAMILL_FUZZ_EXAMPLES", "25"))


def _operations(server: RunningServer) -> list[object]:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_no_operation_answers_a_server_error(server: RunningServer) -> None:
    key = server.new_key()
    headers = {"Authorization": f"Bearer {key}"}
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = _operations(server)
    assert len(operations) > 20  # the whole API is in the schema

    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.generate],
        )
        @given(case=operation.as_strategy())  # type: ignore[attr-defined]
        def check(case: schemathesis.Case) -> None:
            # Generated auth headers would only be refused; rotating a key revokes it, so that gets its own.
            own = {"Authorization": f"Bearer {server.new_key()}"} if "rotate" in case.path else headers
            case.headers = {**(case.headers or {}), **own}
            response = case.call(timeout=30)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}\n"
                    f"  body={case.body!r:.300} query={case.query!r:.200} path={case.path_parameters!r:.200}"
                )

        check()

    assert not failures, "\n".join(failures[:20])
    print(f"{len(operations)} operations, statuses: {dict(sorted(statuses.items()))}")
    # The requests reached the handlers: some succeeded and some were refused as bad input.
    assert any(200 <= status < 300 for status in statuses)
    assert statuses[400] + statuses[422] > 0
