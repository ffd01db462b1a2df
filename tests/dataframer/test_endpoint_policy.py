"""A model endpoint a tenant names in a run (``databricks_api_base``) goes through the outbound-URL policy.

Two checks: a base whose host is an internal address in any spelling is a 400 naming the field at once;
a host name is judged where the run's connections are made, on the addresses each one dials. The server
here allows nothing (``DATAMILL_FETCH_ALLOW`` unset), so its loopback listener must never see a request.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from df_models import loopback_models, plain_reply
from df_waits import wait_run
from test_specs import seedless_spec

import dataframer
from conftest import FAKE_MODEL, RunningServer, running_server, write_fake_routes
from datamill.llm.fake_server import FakeOpenAIServer
from datamill.server.context import ServerContext
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings

DATABRICKS_MODEL = "databricks/system.ai.gpt-6-astra"

#: Spellings of internal addresses: dotted, short, decimal, hexadecimal, octal, IPv6 and IPv4-mapped IPv6.
FORMS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "017700000001",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "169.254.169.254",
    "10.0.0.7",
    "[fd00::1]",
]


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server that allows no internal address."""
    data_dir = tmp_path_factory.mktemp("endpoint-policy")
    runs = RunSettings(model=FAKE_MODEL, routes_path=write_fake_routes(data_dir / "routes.yaml"), poll_s=0.1)
    settings = ServerSettings.for_data_dir(data_dir)
    with running_server(settings, context=ServerContext.build(settings, runs=runs)) as server:
        yield server


@pytest.fixture
def strict_client(strict: RunningServer) -> Iterator[dataframer.Dataframer]:
    with dataframer.Dataframer(base_url=strict.base_url, api_key=strict.new_key(), max_retries=0) as made:
        yield made


def _databricks(base: str, secret: str = "s") -> dict[str, str]:
    return {
        "databricks_client_id": "client-1",
        "databricks_client_secret": secret,
        "databricks_api_base": base,
    }


def test_a_run_never_posts_to_a_name_that_resolves_to_loopback(strict_client: dataframer.Dataframer) -> None:
    client = strict_client
    secret = f"dbsecret-{secrets.token_hex(8)}"
    with loopback_models(FakeOpenAIServer(reply=plain_reply)) as (listener,):
        port = listener.base_url.rsplit(":", 1)[1].split("/", 1)[0]
        run = client.dataframer.runs.create(
            spec_id=seedless_spec(client),
            number_of_samples=2,
            generation_model=DATABRICKS_MODEL,
            skip_outline=True,
            extra_body=_databricks(f"http://localhost:{port}/v1", secret),
        )
        done = wait_run(client, run.id)
        assert listener.count == 0
    assert done.status == "FAILED"
    assert "loopback" in (done.error or "")
    assert "DATAMILL_FETCH_ALLOW" in (done.error or "")
    assert secret not in (done.error or "")


@pytest.mark.parametrize("host", FORMS)
def test_a_literal_internal_workspace_is_refused_at_once(
    strict_client: dataframer.Dataframer, host: str
) -> None:
    client = strict_client
    spec_id = seedless_spec(client)
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.runs.create(
            spec_id=spec_id,
            number_of_samples=2,
            generation_model=DATABRICKS_MODEL,
            skip_outline=True,
            extra_body=_databricks(f"http://{host}:8080/v1"),
        )
    [detail] = caught.value.body["details"]
    assert detail["field"] == "databricks_api_base"
    assert "DATAMILL_FETCH_ALLOW" in detail["reason"]
    assert client.dataframer.runs.list() == []


def test_an_allowed_workspace_is_reached(df_server: RunningServer) -> None:
    """The session server allows 127.0.0.1 (see `test_runs.test_databricks_secret_is_used_but_never_kept`)."""
    assert "127.0.0.1" in df_server.context.runs.settings.fetch_allow
