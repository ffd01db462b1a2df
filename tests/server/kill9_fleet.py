"""The harness of the kill -9 tests of the jobs a worker runs: processes, a model that holds, the database.

`Fleet` is a `datamill serve --no-worker` process and `datamill worker` processes on one data dir and one
database. `HoldingModel` is the reply of a loopback OpenAI-compatible model (`runs_helpers.loopback_model`):
it answers like the shipped fake model (a schema's deterministic value, seeded by the request's text; the
last user message echoed otherwise), or with a fresh sample per call (``sampling``: sentences of random words
where the schema allows any string, for jobs that refuse near copies), or as a PII detector naming the
emails and capitalised name pairs of each passage. Once armed with `HoldingModel.arm`, it answers that many
more requests and then holds every request (the whole loopback server waits) until `HoldingModel.release`:
a job that has made some progress cannot make more, so a kill lands in the middle of it, deterministically.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from process_helpers import free_port, start_cli, wait_healthy
from runs_helpers import LEGAL_WORDS, LOOP_MODEL

from datamill.llm.providers.fake import fake_value
from datamill.store import Run, Store
from datamill.store.models import Tenant

#: A model name of the Dataframer SDK's enums, routed to the loopback model like ``loop/*``.
SDK_MODEL = "openai/gpt-oss-120b"
#: What the loopback model's replies are billed, per million tokens, so every job spends something.
PRICES = {"input_price": 1.0, "output_price": 2.0}
_PASSAGE = re.compile(r'<passage number="(\d+)">\n(.*?)\n</passage>', re.DOTALL)


def write_priced_routes(path: Path, base_url: str) -> Path:
    """A routing file sending ``loop/*`` and `SDK_MODEL` to the loopback model at `base_url`, priced."""
    entry = {"provider": "openai", "base_url": base_url, "api_key_env": None, "json_schema": True} | PRICES
    routes = {"loop/*": entry | {"model": "{suffix}"}, SDK_MODEL: entry | {"model": "gpt-oss-120b"}}
    path.write_text(yaml.safe_dump({"default_model": LOOP_MODEL, "routes": routes}), encoding="utf-8")
    return path


def _schema(body: dict[str, Any]) -> Any:
    return ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")


def _last_user(body: dict[str, Any]) -> str:
    last: dict[str, Any] = next(
        (m for m in reversed(body.get("messages", [])) if m.get("role") == "user"), {}
    )
    return str(last.get("content", ""))


def fake_reply(body: dict[str, Any]) -> str:
    """The fake model's answer (`datamill.llm.providers.fake.default_reply`) to an OpenAI request body."""
    schema = _schema(body)
    if schema is not None:
        text = "\x00".join(str(m.get("content", "")) for m in body.get("messages", []))
        return json.dumps(fake_value(schema, hashlib.sha256(text.encode()).hexdigest()[:8]))
    return "[fake] " + " ".join(_last_user(body).split())[:200]


def _fixed(schema: Any) -> set[str]:
    """The strings a schema allows as ``enum`` or ``const`` values, anywhere in it."""
    if isinstance(schema, list):
        return set[str]().union(*(_fixed(s) for s in schema))
    if not isinstance(schema, dict):
        return set()
    found = {v for v in [*(schema.get("enum") or []), schema.get("const")] if isinstance(v, str)}
    return found.union(*(_fixed(v) for v in schema.values()))


def _sentences(value: Any, rng: random.Random, keep: Collection[str] = ()) -> Any:
    if isinstance(value, dict):
        return {k: _sentences(v, rng, keep) for k, v in value.items()}
    if isinstance(value, list):
        return [_sentences(v, rng, keep) for v in value]
    if isinstance(value, str) and value not in keep:
        return " ".join(rng.choice(LEGAL_WORDS) for _ in range(rng.randint(12, 24))).capitalize() + "?"
    return value


def detector_reply(body: dict[str, Any]) -> str:
    """A PII detection model's answer: the emails and capitalised name pairs of each passage."""
    entities: list[dict[str, Any]] = []
    for number, text in _PASSAGE.findall(_last_user(body)):
        for email in re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", text):
            entities.append({"passage": int(number), "text": email, "label": "email", "score": 0.97})
        for name in re.findall(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b", text):
            entities.append({"passage": int(number), "text": name, "label": "person", "score": 0.9})
    return json.dumps({"entities": entities})


class HoldingModel:
    """The loopback model's reply (see the module docstring); ``mode`` is fake, sampling or detector."""

    def __init__(self, mode: str = "fake") -> None:
        self.mode = mode
        self.answered = 0
        self.held = threading.Event()
        self._released = threading.Event()
        self._hold_at: int | None = None
        self._calls = 0

    def arm(self, answers: int) -> None:
        """Answer `answers` more requests, then hold every request until `release`."""
        self._hold_at = self.answered + answers

    def release(self) -> None:
        self._released.set()

    def __call__(self, body: dict[str, Any]) -> str:
        if self._hold_at is not None and self.answered >= self._hold_at and not self._released.is_set():
            self.held.set()
            self._released.wait(60)  # the loopback server's loop waits too: nothing is answered meanwhile
        self.answered += 1
        if self.mode == "detector" and _PASSAGE.search(_last_user(body)):
            return detector_reply(body)
        if self.mode == "sampling":
            self._calls += 1
            rng = random.Random(self._calls)
            schema = _schema(body)
            if schema is not None:
                return json.dumps(_sentences(fake_value(schema, "x"), rng, _fixed(schema)))
            return str(_sentences("", rng))
        return fake_reply(body)


@dataclass
class Fleet:
    """`datamill serve --no-worker` and `datamill worker` processes on one data dir and database."""

    tmp_path: Path
    env: dict[str, str]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    api: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.tmp_path / "data"

    def serve(self) -> str:
        port = free_port()
        log = self.tmp_path / "api.log"
        self.api = start_cli(["serve", "--no-worker", "--port", str(port), *self._dir()], self.env, log)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, self.api, log)
        return url

    def start(self, name: str) -> subprocess.Popen[bytes]:
        process = start_cli(["worker", *self._dir()], self.env, self.tmp_path / f"{name}.log")
        self.workers[name] = process
        return process

    def kill(self, name: str) -> None:
        process = self.workers[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def check_alive(self, name: str) -> None:
        assert self.workers[name].poll() is None, f"worker {name} exited:\n{self.log(name)}"

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text()[-4000:]

    def _dir(self) -> list[str]:
        return ["--data-dir", str(self.data_dir)]


@contextmanager
def fleet(tmp_path: Path, env: dict[str, str]) -> Iterator[Fleet]:
    started = Fleet(tmp_path, env)
    try:
        yield started
    finally:
        for process in [*started.workers.values(), started.api]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)


def until(condition: Callable[[], bool], what: str, alive: Callable[[], None], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        alive()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def jobs_of(url: str, tenant_id: str, kind: str) -> list[Run]:
    """The tenant's jobs of `kind`, read from the database."""
    store = Store.from_url(url)
    try:
        with store.session() as session:
            found = list(session.query(Run).filter(Run.tenant_id == tenant_id, Run.kind == kind))
            session.expunge_all()
            return found
    finally:
        store.close()


def balance(url: str, tenant_id: str) -> float:
    store = Store.from_url(url)
    try:
        with store.session() as session:
            tenant = session.get(Tenant, tenant_id)
            assert tenant is not None
            return float(tenant.credits)
    finally:
        store.close()


def leftovers(data_dir: Path) -> list[str]:
    """Files a writer leaves behind when it dies before committing (``*.part``, ``*.tmp``)."""
    return sorted(str(p) for p in data_dir.rglob("*") if p.suffix in (".part", ".tmp"))
