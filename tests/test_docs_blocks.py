"""Every code block in README.md and docs/*.md runs as written, or is marked with the reason it does not.

How each block is checked (docs/testing.md, "Code blocks in the docs"):

- ``python``: the page's Python blocks run in order in one namespace, as cells of a notebook do (top-level
  ``await`` included), each page in a fresh folder holding the files the examples name (`tests/docs_files`);
- ``bash``, ``sh``, ``shell``, ``console``: every ``datamill ...`` command runs through the real command line
  and must exit 0; ``export NAME=value`` sets a variable for the commands after it; any other command fails
  the block, which must then be marked;
- ``yaml`` and ``json``: parsed; a YAML routing file (``routes:``) is loaded as ``--routes`` loads it and a
  spec (``spec:``) is parsed as ``datamill spec validate`` parses it;
- a block in any other language, or none, must be marked.

Everything runs offline: ``DATAMILL_MODEL`` is the bundled fake model, and the hosted families (``openai/*``,
``anthropic/*``, ``gemini/*``, Together's and the self-hosted servers' patterns) are routed to the provider
simulator on loopback, so a command naming ``anthropic/claude-haiku-4-5`` really calls a server speaking the
Anthropic API.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import json
import os
import re
import shlex
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from datamill.cli.main import cli
from datamill.core.run_config import parse_run_config
from datamill.core.spec import parse_spec_yaml
from datamill.llm.routing import Routing
from datamill.llm.simulator import serve_in_thread
from datamill.llm.simulator.formats import API_ANTHROPIC, API_GEMINI, API_OPENAI
from datamill.server.context import ServerContext
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings
from docs_blocks import NOT_RUN, ROOT, RUN_BY, RUN_WITH, Block, all_blocks, pages
from server_conftest import load_server_conftest

FILES = Path(__file__).parent / "docs_files"
PYTHON = {"python", "py"}
SHELL = {"bash", "sh", "shell", "console"}
DATA = {"yaml", "yml", "json"}
SIM_URL_ENV = {API_OPENAI: "DOCS_SIM_OPENAI_URL", API_ANTHROPIC: "DOCS_SIM_URL", API_GEMINI: "DOCS_SIM_URL"}

BLOCKS = all_blocks()


def _ids(blocks: list[Block]) -> list[str]:
    return [f"{block.where}[{block.language or 'plain'}]" for block in blocks]


def _runnable(languages: set[str]) -> list[Block]:
    return [block for block in BLOCKS if block.mark in (None, RUN_WITH) and block.language in languages]


# ---- the marks --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", BLOCKS, ids=_ids(BLOCKS))
def test_every_block_is_run_or_marked_with_a_reason(block: Block) -> None:
    if block.mark == NOT_RUN:
        if len(block.mark_text) < 10:
            pytest.fail(f"{block.where}: say why the block is not run, in a few words", pytrace=False)
    elif block.mark == RUN_BY:
        test_file = ROOT / block.mark_text
        if not test_file.is_file() or block.page.name not in test_file.read_text(encoding="utf-8"):
            pytest.fail(
                f"{block.where}: {block.mark_text} is not a test file that reads {block.page.name}",
                pytrace=False,
            )
    elif block.mark == RUN_WITH:
        if block.mark_text != "server" or block.language not in PYTHON:
            pytest.fail(f"{block.where}: `run with: server` is for Python blocks", pytrace=False)
    elif block.language not in PYTHON | SHELL | DATA:
        pytest.fail(
            f"{block.where}: a {block.language or 'plain'} block is not run; mark it "
            "<!-- not run: REASON --> or <!-- run by: tests/FILE.py --> (docs/testing.md)",
            pytrace=False,
        )


def test_the_runner_finds_the_pages_and_their_blocks() -> None:
    names = {page.name for page in pages()}
    assert {"README.md", "python.md", "models.md", "testing.md"} <= names
    assert len(_runnable(PYTHON)) >= 10
    assert len(_runnable(SHELL)) >= 3


# ---- where a page runs -----------------------------------------------------------------------------------


@pytest.fixture
def reader_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh folder with the examples' files, a fresh data directory, the fake model as the default and the
    hosted model families routed to the provider simulator."""
    folder = tmp_path / "reader"
    shutil.copytree(FILES, folder)
    with serve_in_thread(seed=11) as simulator:
        urls = {API_OPENAI: simulator.openai_url, API_ANTHROPIC: simulator.base_url}
        urls[API_GEMINI] = simulator.base_url
        routes = _simulator_routes(tmp_path / "docs-routes.yaml", urls)
        monkeypatch.setenv(SIM_URL_ENV[API_OPENAI], simulator.openai_url)
        monkeypatch.setenv(SIM_URL_ENV[API_ANTHROPIC], simulator.base_url)
        monkeypatch.setenv("DATAMILL_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("DATAMILL_MODEL", "fake/demo")
        monkeypatch.setenv("DATAMILL_ROUTES", str(routes))
        monkeypatch.chdir(folder)
        yield folder


def _simulator_routes(path: Path, urls: dict[str, str]) -> Path:
    """Every shipped family served over HTTP (OpenAI, Anthropic, Gemini APIs), pointed at the simulator."""
    shipped = yaml.safe_load(
        resources.files("datamill.llm").joinpath("routes.yaml").read_text(encoding="utf-8")
    )
    routes: dict[str, Any] = {}
    for name, entry in shipped["routes"].items():
        provider = entry.get("provider")
        if "*" not in name or provider not in SIM_URL_ENV:
            continue
        if "base_url_env" in entry:  # e.g. vllm/*: re-pointed through the variable the shipped route reads
            routes[name] = {"base_url_env": SIM_URL_ENV[provider], "api_key_env": None}
        else:  # an address: a server started for the page routes the same way without the variables
            routes[name] = {"base_url": urls[provider], "api_key_env": None}
    path.write_text(yaml.safe_dump({"routes": routes}), encoding="utf-8")
    return path


# ---- a page, top to bottom ------------------------------------------------------------------------------

RUN_PAGES = sorted({block.page for block in _runnable(PYTHON | SHELL)})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@pytest.mark.parametrize("page", RUN_PAGES, ids=[str(p.relative_to(ROOT)) for p in RUN_PAGES])
def test_a_page_runs_top_to_bottom(page: Path, reader_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's Python and shell blocks in order, in one folder, as a reader follows the page."""
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    with contextlib.ExitStack() as stack:
        served = False
        for block in _runnable(PYTHON | SHELL):
            if block.page != page:
                continue
            if block.mark == RUN_WITH and not served:
                _serve(stack, reader_folder, monkeypatch)
                served = True
            _run(block, namespace, monkeypatch)


def _run(block: Block, namespace: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    if block.language in PYTHON:
        _run_python(block, namespace)
    else:
        _run_shell(block, monkeypatch)


def _run_python(block: Block, namespace: dict[str, Any]) -> None:
    source = "\n" * block.line + block.code  # tracebacks point at the page's own lines
    code = compile(source, str(block.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(code, namespace))
    else:
        exec(code, namespace)


def _commands(block: Block) -> list[list[str]]:
    """The block's commands, continuation lines joined, comments and console output left out."""
    text = block.code.replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        if block.language == "console":
            if not line.startswith("$ "):
                continue  # output
            line = line[2:]
        argv = shlex.split(line, comments=True)
        if argv:
            commands.append(argv)
    return commands


def _run_shell(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = _commands(block)
    if not commands:
        pytest.fail(f"{block.where}: the block holds no command", pytrace=False)
    for argv in commands:
        if argv[0] == "export":
            for assignment in argv[1:]:
                name, _, value = assignment.partition("=")
                monkeypatch.setenv(name, value)
            continue
        while argv and _ASSIGNMENT.match(argv[0]):
            name, _, value = argv.pop(0).partition("=")
            monkeypatch.setenv(name, value)
        program = argv[0] if argv else ""
        if program != "datamill" and not program.endswith("/datamill"):
            pytest.fail(
                f"{block.where}: `{shlex.join(argv)}` is not a datamill command, which the docs runner "
                "cannot run; mark the block <!-- not run: REASON --> (docs/testing.md)",
                pytrace=False,
            )
        result = CliRunner().invoke(cli, argv[1:], catch_exceptions=False)
        if result.exit_code != 0:
            pytest.fail(
                f"{block.where}: `{shlex.join(argv)}` exited {result.exit_code}:\n{result.output}",
                pytrace=False,
            )


def _serve(stack: contextlib.ExitStack, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A datamill server on loopback for the page's SDK examples, models as in the folder's environment.

    Its worker runs the jobs on the fake model (``DATAMILL_MODEL``) and the hosted families on the provider
    simulator (``DATAMILL_ROUTES``); the SDKs find it, and a new tenant's key, in their variables.
    """
    server = load_server_conftest()
    data_dir = folder.parent / "server"
    runs = RunSettings(
        model=os.environ["DATAMILL_MODEL"],
        routes_path=Path(os.environ["DATAMILL_ROUTES"]),
        batch_size=4,
        poll_s=0.1,
        eval_sample_size=4,
        fetch_allow=("127.0.0.1",),
    )
    settings = ServerSettings.for_data_dir(data_dir)
    context = ServerContext.build(settings, runs=runs)
    running = stack.enter_context(server.running_server(settings, context=context))
    key = running.new_key("docs-reader")
    for prefix in ("ADAPTION", "DATAFRAMER"):
        monkeypatch.setenv(f"{prefix}_API_KEY", key)
        monkeypatch.setenv(f"{prefix}_BASE_URL", running.base_url)


# ---- data ------------------------------------------------------------------------------------------------

DATA_BLOCKS = _runnable(DATA)


@pytest.mark.parametrize("block", DATA_BLOCKS, ids=_ids(DATA_BLOCKS))
def test_data_blocks_parse(block: Block, tmp_path: Path) -> None:
    if block.language == "json":
        json.loads(block.code)
        return
    document = yaml.safe_load(block.code)
    if isinstance(document, dict) and ("routes" in document or "default_model" in document):
        path = tmp_path / "routes.yaml"
        path.write_text(block.code, encoding="utf-8")
        Routing.load(path)
    elif isinstance(document, dict) and "spec" in document:
        parse_spec_yaml(block.code)
    elif isinstance(document, dict) and "column_mapping" in document:
        parse_run_config(document)  # a run config, as `datamill adapt --config` reads it
