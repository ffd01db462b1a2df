"""One settings tree: read from the environment once, at an entry point, and passed down.

The source checks walk the syntax tree of every module: only the settings package reads the process
environment, and only the entry points (the CLI, the server's app factory, the Python API's functions when
given no settings) ask it to.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import datamill
from datamill.core.errors import ConfigError
from datamill.llm.routing import Routing
from datamill.services.settings import load_settings
from datamill.services.settings.environment import EnvironmentValues

SRC = Path(datamill.__file__).parent
SETTINGS_PACKAGE = "services/settings/"
#: The modules allowed to build settings from the environment: the entry points.
ENTRY_POINTS = {
    "cli/process.py",  # every CLI command (adapt, generate, models, serve, worker, keys)
    "server/app.py",  # create_app() with no settings: the server started by uvicorn --factory
    "python_api/adapt.py",  # datamill.adapt / datamill.estimate without settings
    "python_api/generation.py",  # datamill.create_spec / generate / evaluate without settings
    "services/adaptation/adapt.py",  # the Python API: adapt_file / estimate_file without settings
    "services/generation/library.py",  # the Python API: create_spec / generate without settings
    "services/generation/evaluate.py",  # the Python API: evaluate_samples without settings
}
#: Programs a launcher starts, which read the launcher's own variables (torchrun's RANK, LOCAL_RANK...).
LAUNCHED = {"training/launch.py"}
_FACTORIES = {"from_env", "load_settings", "read_environment"}


def _modules() -> list[tuple[str, ast.Module]]:
    return [
        (path.relative_to(SRC).as_posix(), ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(SRC.rglob("*.py"))
    ]


def _environment_reads(tree: ast.Module) -> list[int]:
    """Lines that touch the process environment: os.environ, os.getenv, os.putenv, `from os import ...`."""
    names = {"environ", "environb", "getenv", "putenv"}
    lines = []
    for node in ast.walk(tree):
        attribute = isinstance(node, ast.Attribute) and node.attr in names
        if attribute and isinstance(node.value, ast.Name) and node.value.id == "os":  # type: ignore[attr-defined]
            lines.append(node.lineno)
        imported = isinstance(node, ast.ImportFrom) and node.module == "os"
        if imported and any(alias.name in names for alias in node.names):  # type: ignore[attr-defined]
            lines.append(node.lineno)
    return sorted(lines)


def _factory_calls(tree: ast.Module) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in _FACTORIES:
                lines.append(node.lineno)
    return sorted(lines)


def test_only_the_settings_package_reads_the_environment() -> None:
    found = {
        module: lines
        for module, tree in _modules()
        if not module.startswith(SETTINGS_PACKAGE)
        and module not in LAUNCHED
        and (lines := _environment_reads(tree))
    }
    assert found == {}, f"modules below the entry points read the environment: {found}"


def test_only_entry_points_build_settings_from_the_environment() -> None:
    found = {
        module: lines
        for module, tree in _modules()
        if not module.startswith(SETTINGS_PACKAGE)
        and module not in ENTRY_POINTS
        and (lines := _factory_calls(tree))
    }
    assert found == {}, f"modules below the entry points build settings from the environment: {found}"


def test_the_scan_finds_an_environment_read() -> None:
    tree = ast.parse("import os\nkey = os.environ.get('X')\nfrom os import getenv\n")
    assert _environment_reads(tree) == [2, 3]
    assert _factory_calls(ast.parse("s = Settings.from_env()\n")) == [1]


def test_the_tree_reads_every_documented_variable(tmp_path: Path) -> None:
    env = {
        "DATAMILL_HOME": str(tmp_path / "home"),
        "DATAMILL_ROUTES": str(tmp_path / "routes.yaml"),
        "DATAMILL_MODEL": "fake/m",
        "DATAMILL_EVENT_LOOP": "asyncio",
        "DATAMILL_BLOCK_REMOTE_MODELS": "1",
        "DATAMILL_FETCH_ALLOW": "files.internal,10.0.0.0/8",
        "ARROW_DEFAULT_MEMORY_POOL": "system",
        "DATAMILL_DATABASE_URL": "sqlite:///x.db",
        "DATAMILL_BLOB_URL": "memory://blobs",
        "DATAMILL_PUBLIC_URL": "https://data.example/",
        "DATAMILL_MAX_UPLOAD_BYTES": "1MiB",
        "DATAMILL_UPLOAD_URL_TTL": "60",
        "DATAMILL_SIGNING_SECRET": "s3cret",
        "DATAMILL_DEFAULT_CREDITS": "5",
        "DATAMILL_RATE_LIMIT_PER_MINUTE": "30",
        "DATAMILL_RATE_LIMIT_BURST": "3",
        "DATAMILL_GOOGLE_SHEETS_URL": "http://127.0.0.1:9/",
        "DATAMILL_RATE_LIMIT_ANON_PER_MINUTE": "11",
        "DATAMILL_RATE_LIMIT_STORAGE": "memory",
        "DATAMILL_HEADER_TIMEOUT_S": "4",
        "DATAMILL_INGEST_MAX_COLUMNS": "50",
        "DATAMILL_INGEST_TIMEOUT_S": "20",
        "DATAMILL_INGEST_MAX_MEMORY_MB": "256",
        "DATAMILL_INGEST_WORKERS": "5",
        "DATAMILL_INGEST_TENANT_WORKERS": "3",
        "DATAMILL_BODY_TIMEOUT_S": "40",
        "DATAMILL_WORKER": "0",
        "DATAMILL_RUN_BATCH_SIZE": "8",
        "DATAMILL_RUN_LEASE_S": "9",
        "DATAMILL_WORKER_POLL_S": "0.5",
        "DATAMILL_RUN_MAX_ATTEMPTS": "4",
        "DATAMILL_RUN_EVALUATE": "false",
        "DATAMILL_EVAL_SAMPLE_SIZE": "6",
        "DATAMILL_CACHE_COMMIT_EVERY": "2",
        "DATAMILL_SHARED_CONCURRENCY": "1",
        "DATAMILL_RUN_DATA_URL": "memory://runs",
        "DATAMILL_EXECUTOR": "local",
        "DATAMILL_RAY_ADDRESS": "auto",
        "DATAMILL_RAY_ACTORS": "3",
        "DATAMILL_GROUNDING_DOCS": "/srv/kb, /srv/faq.md",
        "DATAMILL_GROUNDING_SEARCH_URL": "https://search.example/query",
        "DATAMILL_GROUNDING_SEARCH_KEY": "sk-search",
        "DATAMILL_PUBLISH_ROOTS": "/srv/a, memory://pub",
        "DATAMILL_HF_ENDPOINT": "http://127.0.0.1:9/",
        "DATAMILL_HF_TOKEN": "hf_x",
        "DATAMILL_TEMPLATES": str(tmp_path / "prompts"),
        "DATAMILL_TRAIN_MODELS": "/srv/base, org/model",
        "DATAMILL_TRAIN_DEVICE": "cuda:1",
        "DATAMILL_TRAIN_CACHE": str(tmp_path / "converted"),
        "DATAMILL_TRAIN_MAX_NEW_TOKENS": "64",
        "DATAMILL_TRAIN_THREADS": "2",
        "DATAMILL_TRAIN_PROCS_PER_NODE": "4",
        "DATAMILL_TRAIN_NNODES": "2",
        "DATAMILL_TRAIN_RDZV_ENDPOINT": "trainer-0.internal:29400",
        "DATAMILL_TRAIN_RDZV_ID": "run-7",
        "OPENAI_API_KEY": "sk-route",
    }
    assert set(env) - {"OPENAI_API_KEY"} == set(EnvironmentValues.model_fields) - {"XDG_DATA_HOME"}

    tree = load_settings(env)

    llm, server, runs, publish = tree.llm, tree.server, tree.runs, tree.publish
    assert (llm.data_dir, llm.routes_path, llm.model) == (
        tmp_path / "home",
        tmp_path / "routes.yaml",
        "fake/m",
    )
    assert (llm.event_loop, llm.block_remote, llm.memory_pool) == ("asyncio", True, "system")
    assert llm.fetch_allow == ("files.internal", "10.0.0.0/8")
    assert llm.templates_dir == tmp_path / "prompts"
    assert (server.data_dir, server.database_url, server.blob_url) == (
        llm.data_dir,
        "sqlite:///x.db",
        "memory://blobs",
    )
    assert (server.public_url, server.max_upload_bytes, server.upload_url_ttl_s) == (
        "https://data.example",
        1 << 20,
        60,
    )
    assert (server.signing_secret, server.default_credits) == ("s3cret", 5.0)
    assert (server.rate_limit_per_minute, server.rate_limit_burst) == (30, 3)
    assert server.google_sheets_url == "http://127.0.0.1:9"
    assert (server.rate_limit_anon_per_minute, server.rate_limit_storage) == (11, "memory")
    assert (server.header_timeout_s, server.body_timeout_s) == (4.0, 40.0)
    assert (server.ingest_max_columns, server.ingest_timeout_s) == (50, 20.0)
    assert server.ingest_max_memory_mb == 256
    assert (server.ingest_workers, server.ingest_tenant_workers) == (5, 3)
    assert (runs.worker, runs.batch_size, runs.lease_s, runs.poll_s, runs.max_attempts) == (
        False,
        8,
        9.0,
        0.5,
        4,
    )
    assert (runs.evaluate, runs.eval_sample_size, runs.cache_commit_every) == (False, 6, 2)
    assert (runs.shared_concurrency, runs.run_data_url, runs.executor) == (True, "memory://runs", "local")
    assert (runs.ray_address, runs.ray_actors, runs.model, runs.event_loop) == (
        "auto",
        3,
        "fake/m",
        "asyncio",
    )
    assert (runs.grounding_docs, runs.grounding_search_url, runs.grounding_search_key) == (
        ("/srv/kb", "/srv/faq.md"),
        "https://search.example/query",
        "sk-search",
    )
    training = runs.training
    assert (training.models, training.device) == (("/srv/base", "org/model"), "cuda:1")
    assert (training.cache_dir, training.max_new_tokens, training.threads) == (tmp_path / "converted", 64, 2)
    assert (training.procs_per_node, training.nnodes) == (4, 2)
    assert (training.rdzv_endpoint, training.rdzv_id) == ("trainer-0.internal:29400", "run-7")
    assert publish.roots == ("/srv/a", "memory://pub")
    assert (publish.hf_endpoint, publish.hf_token) == ("http://127.0.0.1:9", "hf_x")
    # Routes take their keys from what the entry point read; the worker's gateway gets the same.
    route = Routing.load(environ=runs.llm_settings(llm.data_dir).environ).resolve("openai/gpt-6-luna")
    assert route.api_key == "sk-route"


def test_data_dir_overrides_the_home_in_every_section(tmp_path: Path) -> None:
    tree = load_settings({"DATAMILL_HOME": str(tmp_path / "a")}, data_dir=tmp_path / "b")
    assert tree.llm.data_dir == tree.server.data_dir == tmp_path / "b"


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(ConfigError, match="DATAMILL_RUN_BATCH_SIZE: must be a positive whole number"):
        load_settings({"DATAMILL_RUN_BATCH_SIZE": "many"})
    with pytest.raises(
        ConfigError, match="DATAMILL_INGEST_TENANT_WORKERS: must be a whole number of at least 1"
    ):
        load_settings({"DATAMILL_INGEST_TENANT_WORKERS": "0"})


def test_the_ingest_share_of_one_tenant_defaults_to_all_workers_but_one() -> None:
    server = load_settings({}).server
    assert (server.ingest_workers, server.ingest_tenant_workers) == (2, None)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DATAMILL_TRAIN_PROCS_PER_NODE": "0"},
            "DATAMILL_TRAIN_PROCS_PER_NODE: must be a whole number from 1",
        ),
        ({"DATAMILL_TRAIN_NNODES": "2"}, "DATAMILL_TRAIN_RDZV_ENDPOINT: needed when DATAMILL_TRAIN_NNODES"),
        ({"DATAMILL_TRAIN_RDZV_ENDPOINT": "no-port"}, "DATAMILL_TRAIN_RDZV_ENDPOINT: must be host:port"),
    ],
)
def test_a_training_launch_that_cannot_work_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)
