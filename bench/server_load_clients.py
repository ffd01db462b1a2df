"""The clients of the server load benchmark (`bench.server_load`): official-SDK flows, timed per call.

`Recorder` keeps the latency of every SDK call by operation and counts every HTTP answer the SDKs got
(their retries included). `adaption_client` uploads, adapts, polls and downloads; `dataframer_client`
uploads seeds, makes a spec, runs it and downloads the ZIP. Each checks that nothing it sent was lost and
records a failure otherwise.
"""

from __future__ import annotations

import io
import random
import re
import threading
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

#: A model name of the Dataframer SDK; the routing file sends it to the built-in fake model.
DF_MODEL = "anthropic/claude-sonnet-5-5-thinking"
DEADLINE_S = 900.0
T = TypeVar("T")
#: A sample's own file among a run's generated files (the others are its metadata and the run summary).
SAMPLE = re.compile(r"sample_\d+\.(txt|json)")


class Recorder:
    """Latencies per operation and HTTP answers by status, from every client thread."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        #: Rows downloaded per adapted dataset (checked against the run's rejections afterwards).
        self.downloaded: dict[str, int] = {}
        self._lock = threading.Lock()

    def time(self, op: str, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        result = call()
        with self._lock:
            self.latencies[op].append(time.perf_counter() - started)
        return result

    def http_client(self) -> httpx.Client:
        """An httpx client for an SDK that counts every answer it gets (retried ones included)."""
        return httpx.Client(timeout=120, event_hooks={"response": [self._count]})

    def _count(self, response: httpx.Response) -> None:
        with self._lock:
            self.statuses[response.status_code] += 1

    def fail(self, what: str) -> None:
        with self._lock:
            self.failures.append(what)


def _wait(what: str, poll: Callable[[], T], done: Callable[[T], bool], interval: float = 0.25) -> T:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = poll()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not finish within {DEADLINE_S:.0f} s")
        time.sleep(interval)


def _adapt_once(rec: Recorder, sdk: Any, path: Path, counts: Counter[str]) -> None:
    """Upload `path`, wait for ingest, adapt, poll until the run ends, download and count the rows."""
    done = rec.time("adaption.upload_file", lambda: sdk.datasets.upload_file(path))

    def status() -> Any:
        return rec.time("adaption.get_status", lambda: sdk.datasets.get_status(done.dataset_id))

    _wait("ingest", status, lambda s: s.status != "pending", 0.1)
    mapping = {"prompt": "question", "completion": "answer"}
    rec.time("adaption.adapt", lambda: sdk.datasets.adapt(done.dataset_id, column_mapping=mapping))
    counts["runs"] += 1
    final = _wait("adapt run", status, lambda s: s.status in ("succeeded", "failed"))
    if final.status != "succeeded":
        rec.fail(f"adapt run of {done.dataset_id} {final.status}: {final.error_data}")
        return
    counts["succeeded"] += 1
    output = rec.time(
        "adaption.download", lambda: sdk.datasets.download(done.dataset_id, file_format="jsonl")
    )
    got = len(output.text().splitlines())
    counts["rows_downloaded"] += got
    rec.downloaded[done.dataset_id] = got


_WORDS = [
    "amber",
    "birch",
    "cobalt",
    "delta",
    "ember",
    "fjord",
    "garnet",
    "harbor",
    "iris",
    "jasper",
    "kelp",
    "lumen",
    "maple",
    "nectar",
    "onyx",
    "pepper",
    "quartz",
    "raven",
    "sorrel",
    "tundra",
    "umber",
    "violet",
    "willow",
    "xenon",
    "yarrow",
    "zephyr",
    "anchor",
    "beacon",
    "canyon",
    "dune",
]


def question(seed: str) -> str:
    """A question of its own words, so that no two rows are near-duplicates (dedup keeps them all)."""
    rng = random.Random(seed)
    return "Why does the " + " ".join(rng.choice(_WORDS) + rng.choice(_WORDS) for _ in range(8)) + " work?"


def adaption_client(
    rec: Recorder, base_url: str, key: str, tmp: Path, runs: int, rows: int
) -> dict[str, int]:
    """Upload, adapt, poll and download `runs` times; what was launched and what came back."""
    import adaption

    counts = Counter[str]()
    http = rec.http_client()
    with adaption.Adaption(api_key=key, base_url=base_url, max_retries=5, http_client=http) as sdk:
        for run in range(runs):
            path = tmp / f"{key[-8:]}-{run}.csv"
            lines = [f"{question(f'{key}-{run}-{i}')},Answer {i}." for i in range(rows)]
            path.write_text("question,answer\n" + "\n".join(lines) + "\n", encoding="utf-8")
            _adapt_once(rec, sdk, path, counts)
    return dict(counts)


def _generate_once(rec: Recorder, api: Any, run: int, samples: int, counts: Counter[str]) -> None:
    """Seeds, a spec, a run of `samples`, its ZIP; count the samples the ZIP holds."""
    text = "Support message {i} of run {run}: my parcel is late."
    seeds = [(f"s{i}.txt", text.format(i=i, run=run).encode(), "text/plain") for i in range(3)]
    dataset = rec.time(
        "dataframer.seed_upload",
        lambda: api.seed_datasets.create_with_files(
            name=f"seeds-{run}", dataset_type="MULTI_FILE", files=seeds
        ),
    )
    created = rec.time(
        "dataframer.spec_create",
        lambda: api.specs.create(
            name=f"spec-{run}", dataset_id=dataset.id, spec_generation_model_name=DF_MODEL
        ),
    )
    spec = _wait(
        "spec",
        lambda: rec.time("dataframer.spec_poll", lambda: api.specs.retrieve(created.id)),
        lambda s: s.status in ("SUCCEEDED", "FAILED"),
    )
    if spec.status != "SUCCEEDED":
        rec.fail(f"spec {spec.id} {spec.status}: {spec.error}")
        return
    models = {"generation_model": DF_MODEL, "outline_model": DF_MODEL, "revision_model": DF_MODEL}
    # The load's fake model writes the same sample for every request: the novelty gate would refuse them.
    novelty_off = {"novelty_threshold": 1}
    made = rec.time(
        "dataframer.run_create",
        lambda: api.runs.create(spec_id=spec.id, number_of_samples=samples, **models, extra_body=novelty_off),
    )
    counts["runs"] += 1
    finished = _wait(
        "run",
        lambda: rec.time("dataframer.run_poll", lambda: api.runs.retrieve(made.id)),
        lambda r: r.status in ("SUCCEEDED", "FAILED", "CANCELED"),
    )
    if finished.status != "SUCCEEDED":
        rec.fail(f"run {made.id} {finished.status}: {finished.error}")
        return
    counts["succeeded"] += 1
    answer = _wait(
        "zip",
        lambda: rec.time("dataframer.zip_request", lambda: api.runs.files.download_all(made.id)),
        lambda a: bool(a.download_url),
    )
    archive = rec.time("dataframer.zip_download", lambda: httpx.get(answer.download_url, timeout=120).content)
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        names = set(opened.namelist())
    paths = {file.path for file in finished.generated_files}
    in_zip = {p for p in paths & names if SAMPLE.fullmatch(p)}
    counts["samples_in_zip"] += len(in_zip)
    if paths - names or len(in_zip) != samples:
        rec.fail(
            f"run {made.id}: {len(in_zip)} of {samples} samples in the ZIP, lacking {sorted(paths - names)}"
        )


def dataframer_client(rec: Recorder, base_url: str, key: str, runs: int, samples: int) -> dict[str, int]:
    """Seeds, spec, run, poll and ZIP `runs` times; what was launched and what the ZIPs held."""
    import dataframer

    counts = Counter[str]()
    http = rec.http_client()
    with dataframer.Dataframer(api_key=key, base_url=base_url, max_retries=5, http_client=http) as sdk:
        for run in range(runs):
            _generate_once(rec, sdk.dataframer, run, samples, counts)
    return dict(counts)
