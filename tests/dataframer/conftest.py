"""Fixtures of the Dataframer-compatible API tests: the real server on loopback and the official SDK.

`df_server` (one per session) serves `create_app` through the server tests' `running_server`, with a
routing file that sends every model name the Dataframer SDK knows (`DATAFRAMER_MODELS`) to the shipped
deterministic fake model, a fast worker, and 127.0.0.1 on the outbound-URL allow-list. Tests isolate
themselves by tenant: `df_endpoint` is the ``(base_url, api_key)`` of a new tenant, `client` a
`dataframer.Dataframer` built from it (no retries, so a wrong status shows at once). Tests drive the
server only through the SDK, plus plain HTTP for downloads and for malformed requests the SDK cannot send.
"""

from __future__ import annotations

import secrets
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dataframer.types.dataframer import evaluation_create_params, run_create_params, spec_create_params

import dataframer
from datamill.server.context import ServerContext
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings
from server_conftest import load_server_conftest

FAKE_MODEL = "fake/test-model"


_server_conftest = load_server_conftest()
RunningServer = _server_conftest.RunningServer
running_server = _server_conftest.running_server


def _literal_values(params: type, *fields: str) -> set[str]:
    hints = typing.get_type_hints(params, include_extras=True)
    return {value for field in fields for value in typing.get_args(hints[field])}


#: Every model name of the SDK's enums (run models, spec generation models, evaluation models).
DATAFRAMER_MODELS = sorted(
    _literal_values(run_create_params.RunCreateParams, "generation_model", "outline_model", "revision_model")
    | _literal_values(spec_create_params.SpecCreateParams, "spec_generation_model_name")
    | _literal_values(evaluation_create_params.EvaluationCreateParams, "evaluation_model")
)


def write_fake_routes(path: Path) -> Path:
    """A routing file sending each of `DATAFRAMER_MODELS` to the fake provider (priced, so costs show)."""
    entry = {"provider": "fake", "model": "{suffix}", "api_key_env": None, "base_url_env": None}
    routes = {name: entry | {"input_price": 1.0, "output_price": 2.0} for name in DATAFRAMER_MODELS}
    path.write_text(yaml.safe_dump({"default_model": FAKE_MODEL, "routes": routes}), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def df_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server, its worker running the generation jobs on the fake model."""
    data_dir = tmp_path_factory.mktemp("dataframer")
    routes = write_fake_routes(data_dir / "routes.yaml")
    runs = RunSettings(
        model=FAKE_MODEL,
        routes_path=routes,
        batch_size=4,
        poll_s=0.1,
        eval_sample_size=10,
        fetch_allow=("127.0.0.1",),  # the Databricks workspace of test_runs listens there
    )
    settings = ServerSettings.for_data_dir(data_dir)
    context = ServerContext.build(settings, runs=runs)
    with running_server(settings, context=context) as running:
        yield running


@pytest.fixture
def df_endpoint(df_server: RunningServer) -> tuple[str, str]:
    """``(base_url, api_key)`` of a new tenant."""
    return df_server.base_url, df_server.new_key(f"df-{secrets.token_hex(4)}")


@pytest.fixture
def client(df_endpoint: tuple[str, str]) -> Iterator[dataframer.Dataframer]:
    """The official SDK, as that tenant, without retries."""
    base_url, api_key = df_endpoint
    made = dataframer.Dataframer(base_url=base_url, api_key=api_key, max_retries=0)
    yield made
    made.close()
