"""Settings of runs and of the worker that executes them, read from the environment once, in a factory.

| variable                   | meaning                                                        | default      |
|----------------------------|----------------------------------------------------------------|--------------|
| DATAMILL_MODEL             | the model of every run (the wire API has no model field)       | the routes'  |
| DATAMILL_ROUTES            | a routing file whose entries override the shipped ones         | (none)       |
| DATAMILL_WORKER            | run the in-process worker (``0``/``false``: queue runs only)   | 1            |
| DATAMILL_RUN_BATCH_SIZE    | rows per batch; each finished batch is checkpointed            | 256          |
| DATAMILL_RUN_LEASE_S       | seconds a worker's claim lasts without a heartbeat             | 30           |
| DATAMILL_WORKER_POLL_S     | seconds between polls of an idle worker                        | 1            |
| DATAMILL_RUN_MAX_ATTEMPTS  | claims a run gets before it is failed (``E0302``)              | 3            |
| DATAMILL_RUN_EVALUATE      | grade a sample before and after each adaptation                | 1            |
| DATAMILL_EVAL_SAMPLE_SIZE  | rows the evaluation judges                                     | 50           |
| DATAMILL_CACHE_COMMIT_EVERY| model replies a worker caches before writing them to disk      | 1            |
| DATAMILL_SHARED_CONCURRENCY| a route's ``max_concurrency`` holds for all workers together   | 0            |
| DATAMILL_RUN_DATA_URL      | where runs keep checkpoints and outputs (an fsspec URL)        | DATA_DIR/runs|
| DATAMILL_EXECUTOR          | ``local`` (batches on the worker) or ``ray`` (on Ray actors)   | local        |
| DATAMILL_RAY_ADDRESS       | the Ray cluster to join (``auto``, ``ray://host:10001``)       | a local Ray  |
| DATAMILL_RAY_ACTORS        | Ray actors per run (each with its own model gateway)           | 2            |
| DATAMILL_GROUNDING_DOCS    | files, folders or fsspec URLs grounding searches (commas)      | (none)       |
| DATAMILL_GROUNDING_SEARCH_URL | a search API grounding asks instead (http or https)         | (none)       |
| DATAMILL_GROUNDING_SEARCH_KEY | the key sent to that API as ``Authorization: Bearer``       | (none)       |
| DATAMILL_TRAIN_*           | AutoScientist training (`datamill.services.settings.training`) |              |

After a crash, a run waits up to ``DATAMILL_RUN_LEASE_S`` before a worker takes it over. With
``DATAMILL_CACHE_COMMIT_EVERY=1`` every model reply is in the response cache before the call returns, so a
killed worker's run pays again only for the calls that were in flight; a larger value writes less often and
may pay again for up to that many replies.

Grounding (``brand_controls.hallucination_mitigation``) searches what the operator configures: the search
API when ``DATAMILL_GROUNDING_SEARCH_URL`` is set (reached through the safe fetcher, so an internal address
must be listed in ``DATAMILL_FETCH_ALLOW``), else a full-text index of ``DATAMILL_GROUNDING_DOCS``. With
neither, a run that asks for grounding is refused with 400 naming the field.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from datamill.core.credits import PriceTable
from datamill.core.errors import ConfigError
from datamill.core.run_options import RunOptions
from datamill.runners.run_files import Location, run_location
from datamill.services.settings.entry import Settings
from datamill.services.settings.environment import read_environment
from datamill.services.settings.training import TrainingSettings

EXECUTORS = ("local", "ray")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _flag(value: str, name: str) -> bool:
    text = value.strip().lower()
    if text not in _TRUE + _FALSE:
        raise ConfigError(f"{name}: must be one of {', '.join(_TRUE + _FALSE)}, got {value!r}")
    return text in _TRUE


def _number(value: str, name: str, *, integer: bool = False) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number <= 0 or (integer and number != int(number)):
        raise ConfigError(f"{name}: must be a positive {'whole ' if integer else ''}number, got {value!r}")
    return number


def _search_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"DATAMILL_GROUNDING_SEARCH_URL: must be an http(s) URL, got {text!r}")
    return text


@dataclass(frozen=True)
class RunSettings:
    """How runs execute; see the module docstring. Build with `from_env`, or directly in tests."""

    worker: bool = True
    model: str | None = None
    routes_path: Path | None = None
    batch_size: int = 256
    lease_s: float = 30.0
    poll_s: float = 1.0
    max_attempts: int = 3
    evaluate: bool = True
    eval_sample_size: int = 50
    cache_commit_every: int = 1
    shared_concurrency: bool = False
    run_data_url: str | None = None
    executor: str = "local"
    ray_address: str | None = None
    ray_actors: int = 2
    price_table: PriceTable = field(default_factory=PriceTable)
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    fetch_allow: tuple[str, ...] = ()
    event_loop: str = "auto"
    grounding_docs: tuple[str, ...] = ()
    grounding_search_url: str | None = None
    grounding_search_key: str | None = field(default=None, repr=False)
    training: TrainingSettings = field(default_factory=TrainingSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunSettings:
        """Read the variables of the module docstring from `env` (default: the process environment)."""
        return cls.from_values(*read_environment(env))

    @classmethod
    def from_values(cls, env: Mapping[str, str], environ: Mapping[str, str]) -> RunSettings:
        """The settings the declared variables `env` describe; unset ones keep their defaults."""
        llm = Settings.from_values(env, environ)
        values: dict[str, Any] = {
            "model": llm.model,
            "routes_path": llm.routes_path,
            "environ": llm.environ,
            "fetch_allow": llm.fetch_allow,
            "event_loop": llm.event_loop,
            "training": TrainingSettings.from_values(env),
        }
        if text := env.get("DATAMILL_WORKER"):
            values["worker"] = _flag(text, "DATAMILL_WORKER")
        if text := env.get("DATAMILL_SHARED_CONCURRENCY"):
            values["shared_concurrency"] = _flag(text, "DATAMILL_SHARED_CONCURRENCY")
        if text := env.get("DATAMILL_EXECUTOR"):
            if text.strip().lower() not in EXECUTORS:
                raise ConfigError(f"DATAMILL_EXECUTOR: must be one of {', '.join(EXECUTORS)}, got {text!r}")
            values["executor"] = text.strip().lower()
            if values["executor"] == "ray" and importlib.util.find_spec("ray") is None:
                raise ConfigError("DATAMILL_EXECUTOR=ray needs Ray: pip install 'datamill[ray]'")
        if text := env.get("DATAMILL_RUN_DATA_URL"):
            values["run_data_url"] = text.strip()
        if text := env.get("DATAMILL_RAY_ADDRESS"):
            values["ray_address"] = text.strip()
        if text := env.get("DATAMILL_RUN_EVALUATE"):
            values["evaluate"] = _flag(text, "DATAMILL_RUN_EVALUATE")
        for name, key in (
            ("DATAMILL_RUN_BATCH_SIZE", "batch_size"),
            ("DATAMILL_RUN_MAX_ATTEMPTS", "max_attempts"),
            ("DATAMILL_CACHE_COMMIT_EVERY", "cache_commit_every"),
            ("DATAMILL_RAY_ACTORS", "ray_actors"),
        ):
            if text := env.get(name):
                values[key] = int(_number(text, name, integer=True))
        if text := env.get("DATAMILL_EVAL_SAMPLE_SIZE"):
            values["eval_sample_size"] = int(_number(text, "DATAMILL_EVAL_SAMPLE_SIZE", integer=True))
        for name, key in (("DATAMILL_RUN_LEASE_S", "lease_s"), ("DATAMILL_WORKER_POLL_S", "poll_s")):
            if text := env.get(name):
                values[key] = _number(text, name)
        if text := env.get("DATAMILL_GROUNDING_DOCS"):
            values["grounding_docs"] = tuple(p.strip() for p in text.split(",") if p.strip())
        if text := env.get("DATAMILL_GROUNDING_SEARCH_URL"):
            values["grounding_search_url"] = _search_url(text.strip())
        if text := env.get("DATAMILL_GROUNDING_SEARCH_KEY"):
            values["grounding_search_key"] = text.strip()
        return replace(cls(), **values)

    def run_options(self) -> RunOptions:
        """The options a new run is launched with (kept with the run, so a resume uses the same)."""
        # Safety review removes rows whose response violates a listed category, as the command line does;
        # the removed rows are downloadable with their reasons (GET /api/v1/datasets/{id}/rejected).
        return RunOptions(
            batch_size=self.batch_size,
            evaluate=self.evaluate,
            eval_sample_size=self.eval_sample_size,
            grounding_docs=self.grounding_docs,
            grounding_search_url=self.grounding_search_url,
        )

    def run_location(self, data_dir: Path, run_id: str) -> Location:
        """Where run `run_id` keeps its checkpoint and output: under the run data URL, else the data dir."""
        return run_location(data_dir, run_id, self.run_data_url)

    def llm_settings(self, data_dir: Path) -> Settings:
        """The gateway settings: routing, model, keys, and the response cache in the data dir."""
        return Settings(
            data_dir=data_dir,
            routes_path=self.routes_path,
            model=self.model,
            environ=self.environ,
            event_loop=self.event_loop,
            fetch_allow=self.fetch_allow,
        )
