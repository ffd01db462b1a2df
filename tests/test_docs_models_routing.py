"""The code blocks of docs/models.md's section on choosing and routing models run as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from datamill.cli.adapt import adapt_command
from datamill.llm.routing import Routing

DOC = Path(__file__).parents[1] / "docs" / "models.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SECTION = "## Choosing a model and pointing datamill at it"


def _blocks(language: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return [body for lang, body in _BLOCK.findall(text[start:end]) if lang == language]


def _load(block: str, tmp_path: Path, **environ: str) -> Routing:
    path = tmp_path / "routes.yaml"
    path.write_text(block, encoding="utf-8")
    return Routing.load(path, environ=environ)


def test_the_section_has_its_examples() -> None:
    assert len(_blocks("yaml")) == 4
    assert len(_blocks("python")) == 1


def test_the_vllm_block_names_a_server_with_its_key(tmp_path: Path) -> None:
    route = _load(_blocks("yaml")[0], tmp_path, QWEN_BOX_KEY="k").resolve("qwen-box/Qwen/Qwen3-8B")
    assert (route.provider, route.base_url, route.model, route.api_key) == (
        "openai",
        "http://gpu-box:8000/v1",
        "Qwen/Qwen3-8B",
        "k",
    )


def test_the_shipped_vllm_pattern_takes_its_endpoint_from_the_environment() -> None:
    route = Routing.load(environ={"VLLM_BASE_URL": "http://gpu-box:8000/v1"}).resolve("vllm/Qwen/Qwen3-8B")
    assert (route.base_url, route.model, route.api_key_env) == (
        "http://gpu-box:8000/v1",
        "Qwen/Qwen3-8B",
        None,
    )


def test_the_ollama_block_re_points_the_shipped_pattern_only_where_it_says(tmp_path: Path) -> None:
    route = _load(_blocks("yaml")[1], tmp_path).resolve("ollama/llama3.2")
    shipped = Routing.load().resolve("ollama/llama3.2")
    assert route.base_url == "http://ollama.internal:11434/v1"
    assert (route.provider, route.model, route.timeout_s) == (shipped.provider, "llama3.2", shipped.timeout_s)


def test_the_llamacpp_block_puts_the_schema_in_the_prompt(tmp_path: Path) -> None:
    route = _load(_blocks("yaml")[2], tmp_path).resolve("llamacpp/qwen2.5-7b")
    assert (route.base_url, route.json_schema, route.api_key_env) == ("http://127.0.0.1:8080/v1", False, None)


def test_the_gateway_block_sets_the_default_and_a_together_model(tmp_path: Path) -> None:
    routing = _load(_blocks("yaml")[3], tmp_path, GATEWAY_API_KEY="g", TOGETHER_API_KEY="t")
    assert routing.default_model == "gateway/gpt-4o-mini"
    gateway = routing.resolve("gateway/gpt-4o-mini")
    assert (gateway.model, gateway.api_key, gateway.input_price) == ("gpt-4o-mini", "g", 0.15)
    llama = routing.resolve("meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert (llama.model, llama.base_url) == (
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "https://api.together.xyz/v1",
    )


def test_the_shell_blocks_use_flags_that_exist() -> None:
    commands = [
        shlex.split(line, comments=True)
        for block in _blocks("bash")
        for line in block.splitlines()
        if line.startswith("datamill ")
    ]
    assert len(commands) == 2
    for argv in commands:
        assert argv[:2] == ["datamill", "adapt"]
        adapt_command.make_context("adapt", argv[2:])  # raises on an unknown flag


@pytest.mark.parametrize("code", _blocks("python"))
def test_python_blocks_run(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAMILL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MY_SERVER_KEY", "sk-local")
    monkeypatch.delenv("DATAMILL_MODEL", raising=False)
    monkeypatch.delenv("DATAMILL_ROUTES", raising=False)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_models_routing"})
