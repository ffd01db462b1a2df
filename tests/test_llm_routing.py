from pathlib import Path

import pytest

from datamill.core.dataframer_models import ALL_MODELS
from datamill.core.errors import ConfigError, UnknownModelError
from datamill.llm.routing import Routing
from datamill.services.settings.entry import Settings

# Names the shipped routes also accept beyond the Dataframer model lists.
EXTRA_NAMES = (
    "anthropic/claude-sonnet-4-6",
    "gemini/gemini-3-pro-preview-thinking",
    "deepseek-ai/DeepSeek-V3.1",
    "local/smollm2-135m-instruct",
)
PROVIDER_AND_KEY = {
    "anthropic/": ("anthropic", "ANTHROPIC_API_KEY"),
    "gemini/": ("gemini", "GEMINI_API_KEY"),
    "openai/": ("openai", "OPENAI_API_KEY"),
    "deepseek-ai/": ("openai", "TOGETHER_API_KEY"),
    "moonshotai/": ("openai", "TOGETHER_API_KEY"),
    "databricks/": ("openai", "DATABRICKS_TOKEN"),
}


@pytest.fixture
def shipped() -> Routing:
    environ = {
        "DATABRICKS_API_BASE": "https://example.cloud.databricks.com/serving-endpoints",
        "VLLM_BASE_URL": "http://127.0.0.1:8000/v1",
    }
    return Routing.load(environ=environ)


@pytest.mark.parametrize("name", ALL_MODELS + EXTRA_NAMES)
def test_every_public_name_is_listed_and_resolves(shipped: Routing, name: str) -> None:
    route = shipped.resolve(name)

    assert name in shipped.names()
    assert route.name == name
    assert route.thinking is name.endswith("-thinking")
    assert "-thinking" not in route.model
    assert route.input_price >= 0
    assert route.output_price >= 0
    for prefix, (provider, key) in PROVIDER_AND_KEY.items():
        if name.startswith(prefix) and name != "openai/gpt-oss-120b":
            assert (route.provider, route.api_key_env) == (provider, key)


def test_family_endpoints_and_model_ids(shipped: Routing) -> None:
    haiku = shipped.resolve("anthropic/claude-haiku-4-5-thinking")
    assert (haiku.model, haiku.base_url) == ("claude-haiku-4-5", "https://api.anthropic.com")
    kimi = shipped.resolve("moonshotai/Kimi-K3")
    assert (kimi.model, kimi.base_url) == ("moonshotai/Kimi-K3", "https://api.together.xyz/v1")
    oss = shipped.resolve("openai/gpt-oss-120b")
    assert (oss.model, oss.api_key_env) == ("openai/gpt-oss-120b", "TOGETHER_API_KEY")
    dbx = shipped.resolve("databricks/system.ai.gpt-6-astra-thinking")
    assert dbx.base_url == "https://example.cloud.databricks.com/serving-endpoints"
    assert dbx.model == "system.ai.gpt-6-astra"
    local = shipped.resolve("local/smollm2-135m-instruct")
    assert (local.provider, local.model, local.max_concurrency) == ("local", "bundled:smollm2", 1)
    assert local.input_price == local.output_price == 0
    assert shipped.default_model == "local/smollm2-135m-instruct"


def test_patterns_route_any_name_in_their_family(shipped: Routing) -> None:
    ollama = shipped.resolve("ollama/llama3.2:3b")
    assert (ollama.provider, ollama.model, ollama.base_url) == (
        "openai",
        "llama3.2:3b",
        "http://localhost:11434/v1",
    )
    assert ollama.api_key_env is None
    fake = shipped.resolve("fake/echo-thinking")
    assert (fake.provider, fake.model, fake.thinking) == ("fake", "echo", True)
    vllm = shipped.resolve("vllm/Qwen/Qwen3-8B")
    assert (vllm.model, vllm.base_url) == ("Qwen/Qwen3-8B", "http://127.0.0.1:8000/v1")


def test_unset_base_url_env_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="VLLM_BASE_URL"):
        Routing.load().resolve("vllm/some-model")


def test_unknown_model_lists_configured_names(shipped: Routing) -> None:
    with pytest.raises(UnknownModelError) as caught:
        shipped.resolve("acme/unknown-model")

    assert caught.value.name == "acme/unknown-model"
    assert "anthropic/*" in caught.value.configured
    assert "anthropic/claude-haiku-4-5" in caught.value.configured
    assert "acme/unknown-model" in str(caught.value)
    assert "ollama/*" in str(caught.value)


def test_thinking_suffix_options() -> None:
    routing = Routing.from_dict(
        {
            "routes": {
                "x/*": {"provider": "openai", "base_url": "http://127.0.0.1:1/v1"},
                "x/keep-thinking": {"keep_thinking_suffix": True, "default_thinking_budget": 5000},
                "x/plain-thinking": {"thinking": False},
                "x/always": {"thinking": True, "model": "always-v2"},
            }
        }
    )

    kept = routing.resolve("x/keep-thinking")
    assert (kept.model, kept.thinking, kept.default_thinking_budget) == ("keep-thinking", True, 5000)
    plain = routing.resolve("x/plain-thinking")
    assert (plain.model, plain.thinking) == ("plain", False)
    always = routing.resolve("x/always")
    assert (always.model, always.thinking) == ("always-v2", True)
    assert routing.resolve("x/other-thinking").model == "other"


def test_from_dict_has_no_shipped_routes() -> None:
    routing = Routing.from_dict({"routes": {"t/*": {"provider": "fake"}}, "default_model": "t/a"})

    assert routing.names() == ["t/*"]
    assert routing.default_model == "t/a"
    with pytest.raises(UnknownModelError):
        routing.resolve("anthropic/claude-haiku-4-5")


def test_a_route_sets_the_output_cap_of_calls_that_set_none() -> None:
    routing = Routing.from_dict(
        {"routes": {"t/*": {"provider": "fake"}, "t/short": {"max_output_tokens": 256}}}
    )

    assert routing.resolve("t/short").max_output_tokens == 256
    assert routing.resolve("t/other").max_output_tokens == 4096
    with pytest.raises(ConfigError, match="'max_output_tokens': must be a positive integer"):
        Routing.from_dict({"routes": {"t/*": {"provider": "fake", "max_output_tokens": 0}}})


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_user_file_overrides_fields_and_adds_routes(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
default_model: fake/demo
routes:
  anthropic/claude-haiku-4-5: {input_price: 0.5}
  anthropic/*: {base_url: "http://127.0.0.1:9000"}
  acme/*: {provider: openai, base_url: "http://127.0.0.1:9001/v1", model: "acme-{suffix}", max_concurrency: 7}
""",
    )

    routing = Routing.load(path)

    haiku = routing.resolve("anthropic/claude-haiku-4-5")
    assert (haiku.input_price, haiku.output_price) == (0.5, 5.0)  # only the given field changed
    assert haiku.base_url == "http://127.0.0.1:9000"  # the family pattern was re-pointed
    assert haiku.api_key_env == "ANTHROPIC_API_KEY"
    acme = routing.resolve("acme/m1")
    assert (acme.model, acme.max_concurrency) == ("acme-m1", 7)
    assert routing.default_model == "fake/demo"
    assert "acme/*" in routing.names()


def test_user_patterns_take_precedence_over_shipped_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, "routes:\n  openai/gpt-6*: {provider: fake, model: stand-in}\n")

    routing = Routing.load(path)

    assert routing.resolve("openai/gpt-6-luna").provider == "fake"
    assert routing.resolve("openai/gpt-5.6-terra").provider == "openai"


def test_routes_env_names_the_user_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "routes:\n  mine/*: {provider: fake}\n")
    settings = Settings.from_env({"DATAMILL_ROUTES": str(path)})

    assert Routing.load(settings.routes_path).resolve("mine/x").provider == "fake"


def test_a_route_key_is_read_once_when_the_route_is_resolved() -> None:
    environ = {"OPENAI_API_KEY": "sk-first"}
    routing = Routing.load(environ=environ)

    route = routing.resolve("openai/gpt-6-luna")
    environ["OPENAI_API_KEY"] = "sk-second"

    assert route.api_key == "sk-first"
    assert routing.resolve("openai/gpt-6-luna") is route
    assert "sk-first" not in repr(route)  # keys stay out of logs and error messages


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("routes: [not, a, mapping]", "'routes' must map"),
        ("routes:\n  a/*: {provider: openai, colour: red}\n", "route 'a/\\*': field 'colour': unknown field"),
        ("routes:\n  a/*: {provider: openai, max_concurrency: zero}\n", "field 'max_concurrency'"),
        (
            "routes:\n  a/*: {provider: openai, input_price: -1}\n",
            "field 'input_price': must be a non-negative",
        ),
        (
            "routes:\n  a/*: {provider: openai, json_schema: maybe}\n",
            "field 'json_schema': must be true or false",
        ),
        ("routes:\n  a/*: {base_url: 'http://x'}\n", "route 'a/\\*': field 'provider' is required"),
        ("routes:\n  a/b: {input_price: 1}\n", "route 'a/b': field 'provider' is required"),
        ("routes:\n  a/*: {provider: openai, base_url: x, base_url_env: Y}\n", "not both"),
        ("routes:\n  a/*: {provider: openai, headers: {X-A: 1}}\n", "field 'headers'"),
        ("routes:\n  a/*: oops\n", "route 'a/\\*': must be a mapping"),
        ("rotues: {}\n", "unknown top-level key 'rotues'"),
        ("default_model: nowhere/x\nroutes:\n  a/*: {provider: fake}\n", "default_model 'nowhere/x'"),
        ("routes: {a: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_routing_files_name_the_entry_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)

    with pytest.raises(ConfigError, match=message) as caught:
        Routing.load(path)
    if "route '" in message:
        assert str(path) in str(caught.value)


def test_missing_user_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read routing file"):
        Routing.load(tmp_path / "absent.yaml")


def test_resolve_is_memoised(shipped: Routing) -> None:
    assert shipped.resolve("fake/a") is shipped.resolve("fake/a")
