"""Routing: which provider, endpoint, key and price serve a public model name.

A routing file (YAML) has a top-level ``default_model``, an optional ``judge_models`` list (the models a judge
may default to, in order of preference: `datamill.llm.judge_choice`) and a ``routes`` mapping. Each key is a
public model name (``anthropic/claude-haiku-4-5``) or an fnmatch pattern (``ollama/*``); each value gives some
of:

``provider``            provider kind (``openai``, ``anthropic``, ``gemini``, ``local``, ``fake``)
``base_url``            endpoint root; or ``base_url_env``: the variable holding it
``model``               the provider's model id; may use ``{name}`` (the public name) and ``{suffix}`` (the
                        text after the first ``/``). Default ``{suffix}``.
``api_key_env``         variable holding the API key (null: no key)
``input_price``         USD per million input tokens; ``output_price`` likewise for output and thinking tokens
``cached_input_price``  USD per million input tokens read from the provider's prompt cache; default: the
                        input price times the provider kind's documented ratio (`CACHE_PRICE_RATIOS`)
``cache_write_price``   USD per million input tokens written to the prompt cache (Anthropic bills writes above
                        the input price); default likewise
``batch_discount``      the fraction taken off the prices of calls sent through the provider's batch API, from
                        0 (none) to below 1; default: `BATCH_DISCOUNTS` for the provider kind
``max_concurrency``     ceiling of the adaptive concurrency limiter
``initial_concurrency`` calls the first round trip may send, at most ``max_concurrency`` (default: all of them
                        when the route declares a budget, else 32: slow start; docs/models.md)
``tokens_per_minute``   the provider's token budget for this model: calls are paced to stay under it
``requests_per_minute`` the provider's request budget for this model, likewise (null: none, for both)
``timeout_s``           per-request timeout in seconds
``json_schema``         the provider enforces JSON schemas natively
``vision``              the model accepts images in messages (default false)
``thinking``            force extended thinking on or off (default: on when the name ends in ``-thinking``)
``keep_thinking_suffix`` keep ``-thinking`` in the provider model id (default: dropped)
``default_thinking_budget``, ``headers`` (a mapping of extra HTTP headers)
``max_output_tokens``   the output cap of a ``responses`` call that sets none (default 4096)
``batch``               send the route's calls through the provider's batch API (true) or never (false);
                        default: as the run asks (``datamill adapt --batch``); OpenAI, Anthropic, Gemini only
``batch_poll_s``        seconds between two status calls of a batch in flight (default 30)
``proxy``               the HTTP proxy of the route's requests (``http://host:port``), or ``none`` to connect
                        directly; without it the proxy environment variables decide (docs/models.md)

How a name resolves: the fields of the first matching pattern (patterns of the user file first, in file order,
then the shipped ones), overlaid by the fields of an entry named exactly, if any. So an exact entry may give
only prices and inherit the endpoint from its family's pattern, and re-pointing ``anthropic/*`` in a user file
re-points every Anthropic name. A user entry whose key is also a shipped key updates only the fields it gives.
The shipped prices are defaults for illustration: override them in a user routing file.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from datamill.core.errors import ConfigError, UnknownModelError
from datamill.llm.http.proxies import DIRECT, Proxy
from datamill.llm.types import Route

THINKING_SUFFIX = "-thinking"

_STR_FIELDS = frozenset({"provider", "base_url", "base_url_env", "model", "api_key_env", "proxy"})
_FLOAT_FIELDS = frozenset(
    {
        "input_price",
        "output_price",
        "cached_input_price",
        "cache_write_price",
        "batch_discount",
        "timeout_s",
        "batch_poll_s",
    }
)
_INT_FIELDS = frozenset(
    {
        "max_concurrency",
        "initial_concurrency",
        "default_thinking_budget",
        "max_output_tokens",
        "tokens_per_minute",
        "requests_per_minute",
    }
)
_BOOL_FIELDS = frozenset({"json_schema", "thinking", "keep_thinking_suffix", "vision", "batch"})
_NULLABLE = frozenset(
    {
        "base_url",
        "base_url_env",
        "api_key_env",
        "thinking",
        "proxy",
        "batch",
        "tokens_per_minute",
        "requests_per_minute",
        "initial_concurrency",
    }
)
_FIELDS = _STR_FIELDS | _FLOAT_FIELDS | _INT_FIELDS | _BOOL_FIELDS | {"headers"}
#: Entry fields copied to `Route` as they are.
_ROUTE_FIELDS = (
    "input_price",
    "output_price",
    "cached_input_price",
    "cache_write_price",
    "batch_discount",
    "timeout_s",
    "json_schema",
    "vision",
    "max_concurrency",
    "initial_concurrency",
    "default_thinking_budget",
    "max_output_tokens",
    "headers",
    "proxy",
    "batch",
    "batch_poll_s",
    "tokens_per_minute",
    "requests_per_minute",
)
_TOP_LEVEL = frozenset({"default_model", "judge_models", "routes"})

#: Prompt-cache prices as fractions of the input price, per provider kind, from the providers' price lists:
#: (cache read, cache write). OpenAI and Gemini bill cache reads at a tenth of the input price and writes at
#: the input price; Anthropic bills reads at a tenth and 5-minute cache writes at 1.25 times the input price.
#: A route's ``cached_input_price`` / ``cache_write_price`` override them.
CACHE_PRICE_RATIOS: dict[str, tuple[float, float]] = {
    "openai": (0.1, 1.0),
    "anthropic": (0.1, 1.25),
    "gemini": (0.1, 1.0),
}
#: The batch APIs of OpenAI, Anthropic and Gemini bill half price; other kinds have no batch API.
BATCH_DISCOUNTS: dict[str, float] = {"openai": 0.5, "anthropic": 0.5, "gemini": 0.5}


@dataclass(frozen=True)
class _Layer:
    """One parsed routing file: its entries in file order and its default model."""

    source: str
    entries: dict[str, dict[str, Any]]
    default_model: str | None
    judge_models: tuple[str, ...] | None = None


class Routing:
    """Resolves public model names to `Route` values. Build with `load` or `from_dict`."""

    def __init__(
        self,
        entries: dict[str, dict[str, Any]],
        patterns: list[str],
        default_model: str,
        environ: Mapping[str, str] | None = None,
        judge_models: tuple[str, ...] = (),
    ) -> None:
        self._entries = entries
        self._patterns = patterns
        self._environ: Mapping[str, str] = environ or {}
        self.default_model = default_model
        #: The models a judge may default to, in order of preference (a later layer's list replaces it).
        self.judge_models = judge_models
        self._resolved: dict[str, Route] = {}

    @classmethod
    def load(cls, path: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> Routing:
        """The shipped routes, overridden by a user routing file.

        Args:
            path: the user file (the entry points pass the one ``DATAMILL_ROUTES`` names); None: none.
            environ: the variables routes take their keys and endpoints from (``api_key_env``,
                ``base_url_env``), as the entry point read them; None: no variables.

        Raises:
            ConfigError: a missing or invalid routing file, naming the entry and field at fault.
        """
        shipped_text = resources.files("datamill.llm").joinpath("routes.yaml").read_text(encoding="utf-8")
        layers = [_parse_layer(_load_yaml(shipped_text, "routes.yaml (shipped)"), "routes.yaml (shipped)")]
        if path is not None:
            user_path = Path(path)
            try:
                text = user_path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read routing file {user_path}: {exc.strerror or exc}") from exc
            layers.append(_parse_layer(_load_yaml(text, str(user_path)), str(user_path)))
        return cls._from_layers(layers, environ)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        source: str = "routing dict",
        environ: Mapping[str, str] | None = None,
    ) -> Routing:
        """Routes from one mapping shaped like a routing file, without the shipped routes."""
        return cls._from_layers([_parse_layer(data, source)], environ)

    @classmethod
    def _from_layers(cls, layers: list[_Layer], environ: Mapping[str, str] | None) -> Routing:
        entries: dict[str, dict[str, Any]] = {}
        user_patterns: list[str] = []
        default_model: str | None = None
        judge_models: tuple[str, ...] = ()
        for layer in layers:
            for key, fields in layer.entries.items():
                if key in entries:
                    entries[key] = {**entries[key], **fields}
                else:
                    entries[key] = dict(fields)
                    if _is_pattern(key) and layer is not layers[0]:
                        user_patterns.append(key)
            default_model = layer.default_model or default_model
            if layer.judge_models is not None:
                judge_models = layer.judge_models
        shipped_patterns = [k for k in entries if _is_pattern(k) and k not in user_patterns]
        routing = cls(
            entries, user_patterns + shipped_patterns, default_model or "", environ, judge_models=judge_models
        )
        routing._check(layers[-1].source)
        return routing

    @property
    def environ(self) -> Mapping[str, str]:
        """The variables the entry point read: keys, endpoints, and the proxy and CA settings."""
        return self._environ

    def names(self) -> list[str]:
        """Configured model names and patterns, in routing-file order."""
        return list(self._entries)

    def resolve(self, name: str) -> Route:
        """The route for a public model name.

        Raises:
            UnknownModelError: no entry or pattern matches; the error lists what is configured.
            ConfigError: the matching entry names an unset ``base_url_env`` variable.
        """
        route = self._resolved.get(name)
        if route is None:
            route = self._build(name)
            self._resolved[name] = route
        return route

    def _build(self, name: str) -> Route:
        fields: dict[str, Any] = {}
        pattern = next((p for p in self._patterns if fnmatch.fnmatchcase(name, p)), None)
        if pattern is not None:
            fields.update(self._entries[pattern])
        exact = self._entries.get(name) if not _is_pattern(name) else None
        if exact is not None:
            fields.update(exact)
        if "provider" not in fields:
            raise UnknownModelError(name, self.names())
        return _to_route(name, fields, self._environ)

    def _check(self, source: str) -> None:
        """Fail at load time on an entry that cannot become a route."""
        for key in self._entries:
            if _is_pattern(key):
                if "provider" not in self._entries[key]:
                    raise ConfigError(f"{source}: route {key!r}: field 'provider' is required")
                continue
            try:
                self._build(key)
            except UnknownModelError:
                raise ConfigError(
                    f"{source}: route {key!r}: field 'provider' is required (no pattern supplies it)"
                ) from None
            except ConfigError:
                pass  # an unset base_url_env is only an error when the name is used
        if self.default_model and not self._matches(self.default_model):
            raise ConfigError(f"{source}: default_model {self.default_model!r} matches no route")
        for name in self.judge_models:
            if not self._matches(name):
                raise ConfigError(f"{source}: judge_models: {name!r} matches no route")

    def _matches(self, name: str) -> bool:
        return name in self._entries or any(fnmatch.fnmatchcase(name, p) for p in self._patterns)


def _is_pattern(key: str) -> bool:
    return any(c in key for c in "*?[")


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc


def _parse_layer(data: Any, source: str) -> _Layer:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a routing file must be a mapping with 'routes' and 'default_model'")
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level key {unknown[0]!r} (allowed: default_model, judge_models, routes)"
        )
    default_model = data.get("default_model")
    if default_model is not None and not isinstance(default_model, str):
        raise ConfigError(f"{source}: default_model must be a model name")
    judges = data.get("judge_models")
    if judges is not None and (
        not isinstance(judges, list) or not all(isinstance(j, str) and j for j in judges)
    ):
        raise ConfigError(f"{source}: judge_models must be a list of model names")
    routes = data.get("routes") or {}
    if not isinstance(routes, Mapping):
        raise ConfigError(f"{source}: 'routes' must map model names or patterns to entries")
    entries = {str(key): _parse_entry(source, str(key), value) for key, value in routes.items()}
    return _Layer(source, entries, default_model, None if judges is None else tuple(judges))


def _parse_entry(source: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: route {key!r}: must be a mapping of fields")
    entry: dict[str, Any] = {}
    for field, raw in value.items():
        entry[field] = _check_field(f"{source}: route {key!r}: field {field!r}", field, raw)
    if "base_url" in entry and "base_url_env" in entry:
        raise ConfigError(f"{source}: route {key!r}: give 'base_url' or 'base_url_env', not both")
    return entry


def _check_field(where: str, field: str, raw: Any) -> Any:
    if field not in _FIELDS:
        raise ConfigError(f"{where}: unknown field (allowed: {', '.join(sorted(_FIELDS))})")
    if raw is None:
        if field in _NULLABLE:
            return None
        raise ConfigError(f"{where}: must not be null")
    if field in _STR_FIELDS:
        if not isinstance(raw, str) or not raw:
            raise ConfigError(f"{where}: must be a non-empty string")
        if field == "proxy" and raw.strip().lower() not in DIRECT:
            Proxy.parse(raw, source=where)  # raises ConfigError naming what is wrong
        return raw
    if field in _BOOL_FIELDS:
        if not isinstance(raw, bool):
            raise ConfigError(f"{where}: must be true or false")
        return raw
    if field in _INT_FIELDS:
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            raise ConfigError(f"{where}: must be a positive integer")
        return raw
    if field in _FLOAT_FIELDS:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
            raise ConfigError(f"{where}: must be a non-negative number")
        if field in ("timeout_s", "batch_poll_s") and raw == 0:
            raise ConfigError(f"{where}: must be greater than 0")
        if field == "batch_discount" and raw >= 1:
            raise ConfigError(f"{where}: must be below 1 (0.5 takes half off)")
        return float(raw)
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise ConfigError(f"{where}: must map header names to strings")
    return tuple((str(k), v) for k, v in raw.items())


def _to_route(name: str, fields: dict[str, Any], environ: Mapping[str, str]) -> Route:
    thinking_flag = fields.get("thinking")
    has_suffix = name.endswith(THINKING_SUFFIX)
    thinking = has_suffix if thinking_flag is None else bool(thinking_flag)
    base_name = (
        name[: -len(THINKING_SUFFIX)] if has_suffix and not fields.get("keep_thinking_suffix") else name
    )
    template = fields.get("model", "{suffix}")
    model = template.replace("{name}", base_name).replace(
        "{suffix}", base_name.partition("/")[2] or base_name
    )
    base_url = fields.get("base_url")
    env = fields.get("base_url_env")
    if env:
        base_url = environ.get(env)
        if not base_url:
            raise ConfigError(f"model {name!r} needs an endpoint: set the {env} environment variable")
    kwargs: dict[str, Any] = {k: fields[k] for k in _ROUTE_FIELDS if k in fields}
    provider = fields["provider"]
    read_ratio, write_ratio = CACHE_PRICE_RATIOS.get(provider, (1.0, 1.0))
    input_price = float(fields.get("input_price", 0.0))
    kwargs.setdefault("cached_input_price", round(input_price * read_ratio, 9))
    kwargs.setdefault("cache_write_price", round(input_price * write_ratio, 9))
    kwargs.setdefault("batch_discount", BATCH_DISCOUNTS.get(provider, 0.0))
    key_env = fields.get("api_key_env")
    return Route(
        name=name,
        provider=provider,
        model=model,
        base_url=base_url,
        api_key_env=key_env,
        api_key=environ.get(key_env) or None if key_env else None,
        thinking=thinking,
        **kwargs,
    )
