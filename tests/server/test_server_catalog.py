"""Models, tools, training models, AutoScientist routes that need no training, and the best launch config,
through the official SDK against a loopback server whose routing file the test writes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import adaption
import httpx
import pytest
from runs_helpers import FAKE_MODEL, MAPPING, qa_rows, run_settings, runs_server, upload
from server_helpers import fields_of

from conftest import RunningServer
from datamill.training.base_models import bundled_model, training_available

ROUTES = """
routes:
  mine/served:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    api_key_env: SURFACE_TEST_KEY
  mine/keyless:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    api_key_env: SURFACE_TEST_UNSET_KEY
  mine/no-endpoint:
    provider: openai
    base_url_env: SURFACE_TEST_UNSET_ENDPOINT
    api_key_env: null
"""


@pytest.fixture(scope="module")
def routes_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("routes") / "routes.yaml"
    path.write_text(ROUTES, encoding="utf-8")
    return path


def _serve(data_dir: Path, routes_file: Path, **env: str) -> contextlib.AbstractContextManager[RunningServer]:
    variables = {
        "DATAMILL_ROUTES": str(routes_file),
        "DATAMILL_MODEL": FAKE_MODEL,
        "SURFACE_TEST_KEY": "sk-test",
    }
    return runs_server(data_dir, run_settings(routes_path=routes_file), env=variables | env)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, routes_file: Path) -> Iterator[RunningServer]:
    with _serve(tmp_path_factory.mktemp("catalog"), routes_file) as running:
        yield running


def test_models_lists_the_routed_models_whose_endpoint_and_key_are_set(
    srv: RunningServer, routes_file: Path, tmp_path: Path
) -> None:
    client = srv.client()
    listed = client.models.list()
    assert listed.object == "list"
    by_id = {m.id: m for m in listed.data}
    assert listed.data[0].id == "fake/test-model"  # the server's model comes first
    assert by_id["fake/test-model"].owned_by == "fake"
    assert by_id["mine/served"].owned_by == "openai"
    assert by_id["mine/served"].created == int(routes_file.stat().st_mtime)
    assert by_id["mine/served"].object == "model"
    assert "local/smollm2-135m-instruct" in by_id  # the bundled model needs no key
    assert not {"mine/keyless", "mine/no-endpoint", "anthropic/claude-haiku-4-5"} & set(by_id)
    assert not [m for m in listed.data if "*" in m.id]  # patterns name no model
    more = {"ANTHROPIC_API_KEY": "sk-ant-test", "SURFACE_TEST_UNSET_ENDPOINT": "http://127.0.0.1:9/v1"}
    with _serve(tmp_path, routes_file, **more) as configured:
        now = {m.id for m in configured.client().models.list(type="hosted").data}
    assert {"anthropic/claude-haiku-4-5", "mine/no-endpoint"} <= now


def test_models_refuses_an_unknown_type_and_a_missing_key(srv: RunningServer) -> None:
    with pytest.raises(adaption.BadRequestError) as caught:
        srv.client().models.list(type="local")  # type: ignore[arg-type]
    assert fields_of(caught.value) == ["type"]
    assert httpx.get(f"{srv.base_url}/api/v1/models").status_code == 401


def test_tools_and_training_models(srv: RunningServer) -> None:
    client = srv.client()
    tools = client.tools.list()
    assert tools.object == "list"
    (tool,) = tools.data
    assert (tool.name, tool.type, tool.available) == ("file_search", "file_search", True)
    with pytest.warns(DeprecationWarning, match="deprecated"):  # the SDK marks the old alias so
        old = client.training_models.list().models
    listed = client.autoscientist.list_models().models
    assert [m.id for m in old] == [m.id for m in listed]
    trainable = training_available() and bundled_model() is not None
    assert [m.id for m in listed] == (["smollm2-135m-instruct"] if trainable else [])


def test_autoscientist_lists_no_runs_and_checks_its_query(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    assert list(client.autoscientist.list(limit=5)) == []
    with pytest.raises(adaption.BadRequestError) as caught:
        client.autoscientist.list(limit=0)
    assert fields_of(caught.value) == ["limit"]
    with pytest.raises(adaption.NotFoundError):
        client.autoscientist.list(dataset_id="ds_missing")
    theirs = upload(srv.client(), tmp_path / "theirs.csv", qa_rows(2))
    with pytest.raises(adaption.NotFoundError):  # another tenant's dataset, like an unknown one
        client.autoscientist.list(dataset_id=theirs)
    with pytest.raises(adaption.BadRequestError) as bad_cursor:
        client.autoscientist.list(cursor="zzz")
    assert fields_of(bad_cursor.value) == ["cursor"]


def test_recommend_hyperparams_follows_the_dataset_size(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    dataset_id = upload(
        client, tmp_path / "qa.csv", qa_rows(6), processing_mode="raw", column_mapping=MAPPING
    )
    small = client.autoscientist.recommend_hyperparams(dataset_id=dataset_id, model="base/model")
    assert small.model == "base/model"
    params = small.hyperparams.to_dict()
    assert (params["n_epochs"], params["batch_size"], params["training_rows"]) == (3, 8, 6)
    assert params["learning_rate"] == 2e-4
    assert params["training_method"] == "instruction"
    assert "dpo_beta" not in params
    grown = client.autoscientist.recommend_hyperparams(
        dataset_id=dataset_id, augmentation_domain_rows=5_000, augmentation_general_rows=6_000
    ).hyperparams.to_dict()
    assert (grown["n_epochs"], grown["batch_size"], grown["training_rows"]) == (1, 32, 11_006)


def test_recommend_hyperparams_for_preference_data(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    rows = [{"q": f"q{i}", "good": f"g{i}", "bad": f"b{i}"} for i in range(4)]
    mapping = {"prompt": "q", "chosen": "good", "rejected": "bad"}
    dataset_id = upload(client, tmp_path / "pref.csv", rows, processing_mode="raw", column_mapping=mapping)
    params = client.autoscientist.recommend_hyperparams(dataset_id=dataset_id).hyperparams.to_dict()
    assert params["training_method"] == "alignment"
    assert (params["learning_rate"], params["dpo_beta"]) == (5e-6, 0.1)


def test_recommend_hyperparams_names_bad_fields(srv: RunningServer) -> None:
    client = srv.client()
    with pytest.raises(adaption.BadRequestError) as caught:
        client.autoscientist.recommend_hyperparams(
            dataset_id="", augmentation_domain_rows=-1, augmentation_general_rows=1.5
        )
    assert fields_of(caught.value) == ["dataset_id", "augmentation_domain_rows", "augmentation_general_rows"]
    with pytest.raises(adaption.NotFoundError):
        client.autoscientist.recommend_hyperparams(dataset_id="ds_missing")


def test_best_launch_config_is_null_without_fine_tune_jobs(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    dataset_id = upload(
        client, tmp_path / "qa.csv", qa_rows(3), processing_mode="raw", column_mapping=MAPPING
    )
    assert client.datasets.get_best_launch_config(dataset_id).best_job_config is None
    with pytest.raises(adaption.NotFoundError):
        srv.client().datasets.get_best_launch_config(dataset_id)  # another tenant's dataset


def test_invent_domains_lists_the_shipped_catalogue(srv: RunningServer) -> None:
    domains = srv.client().datasets.invent_domains().domains
    by_code = {d.code: d for d in domains}
    assert {"customer_support", "finance", "software"} <= set(by_code)
    subs = {s.code: s.title for s in by_code["customer_support"].subdomains}
    assert subs["customer_support.shipping"] == "Orders, shipping and returns"
    assert all(s.code.startswith(f"{d.code}.") for d in domains for s in d.subdomains)


def test_an_operators_file_extends_the_catalogue(tmp_path: Path, routes_file: Path) -> None:
    (tmp_path / "invent_domains.yaml").write_text(
        "domains:\n"
        "  - code: aviation\n"
        "    title: Aviation\n"
        "    subdomains: [{code: aviation.maintenance, title: Maintenance}]\n"
        "  - code: finance\n"
        "    subdomains:\n"
        "      - {code: finance.tax, title: Tax law}\n"
        "      - {code: finance.crypto, title: Crypto assets}\n",
        encoding="utf-8",
    )
    with _serve(tmp_path, routes_file) as configured:
        domains = {d.code: d for d in configured.client().datasets.invent_domains().domains}
    assert [s.code for s in domains["aviation"].subdomains] == ["aviation.maintenance"]
    assert domains["finance"].title == "Finance"
    finance = {s.code: s.title for s in domains["finance"].subdomains}
    assert (finance["finance.tax"], finance["finance.crypto"]) == ("Tax law", "Crypto assets")
    assert list(domains)[-1] == "aviation"


def test_a_broken_operators_file_stops_the_server_naming_the_entry(tmp_path: Path) -> None:
    from datamill.core.errors import ConfigError
    from datamill.services.datasets.invent_catalog import load_catalogue

    (tmp_path / "invent_domains.yaml").write_text(
        "domains:\n  - {code: aviation, title: Aviation, subdomains: [{code: travel.air, title: Air}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"domains\[0\]\.subdomains\[0\]\.code: must be 'aviation\.<part>'"):
        load_catalogue(tmp_path)
