"""Planning and running one adaptation in the test process, locally or on Ray actors, into any checkpoint.

`execute` plans the run as a worker does (`prepare_run`, the deterministic fake model, no response cache on
the driver) and runs it with `run_adaptation` into the checkpoint at a local path or an fsspec URL, stopping
after `batches` batches when asked (an attempt that was interrupted), on `ray_actors` Ray actors when asked,
which may be told to find the input elsewhere and keep their data dir elsewhere.
"""

from __future__ import annotations

import itertools
import json
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from datamill.dataio import open_dataset
from datamill.pipelines.adapt import run_adaptation
from datamill.runners.checkpoint_store import checkpoint_at
from datamill.runners.inputs import RunInput
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.adaptation.plans import options_to_dict, prepare_run, run_job
from datamill.services.adaptation.ray_actors import ActorInput, actor_plan
from datamill.services.settings.runs import RunSettings

MODEL = "fake/test-model"
ROWS = 30
BATCH = 4
BATCHES = 8  # ROWS + 1 input rows in batches of BATCH
REQUEST: dict[str, Any] = {
    "column_mapping": {"prompt": "question", "completion": "answer"},
    "recipe_specification": {"recipes": {"prompt_rephrase": True, "deduplication": True}},
}
SETTINGS = RunSettings(model=MODEL, batch_size=BATCH, evaluate=False)


def write_input(tmp_path: Path) -> RunInput:
    """`ROWS` questions and one exact duplicate (which dedup, a batch step, drops) as a jsonl file."""
    path = tmp_path / "qa.jsonl"
    rows = [
        {"id": i, "question": f"Question {i}: how do I reset device {i % 7}?", "answer": "?"}
        for i in range(ROWS)
    ]
    rows.append(dict(rows[3]) | {"id": 99})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return RunInput(path, "jsonl")


async def execute(
    source: RunInput,
    data_dir: Path,
    location: str | Path,
    *,
    ray_actors: int = 0,
    batches: int | None = None,
    actor_input: ActorInput | None = None,
    actor_data_dir: Path | None = None,
) -> tuple[list[dict[str, Any]], int, int]:
    """Run into the checkpoint at `location`; its output rows, resumed batches and batches sent to Ray.

    The actors read `actor_input` (by default the driver's file) with `actor_data_dir` (by default
    `data_dir`) as their data dir.
    """
    llm = SETTINGS.llm_settings(data_dir)
    gateway = make_gateway(llm, use_cache=False)
    options = SETTINGS.run_options()
    runners: Any = None
    try:
        prepared = await prepare_run("adapt", run_job(source, MODEL, options), REQUEST, llm, gateway)
        checkpoint = checkpoint_at(location, "fingerprint")
        if ray_actors:
            from datamill.runners.ray_executor import RayBatchRunners

            args = (
                "adapt",
                actor_input or ActorInput(source),
                MODEL,
                options_to_dict(options),
                REQUEST,
                SETTINGS,
                actor_data_dir or data_dir,
                False,
            )
            make_checkpoint = partial(checkpoint_at, location, "fingerprint")
            runners = RayBatchRunners(partial(actor_plan, *args), make_checkpoint, actors=ray_actors)
        with open_dataset(source.path, format=source.format, batch_size=BATCH) as reader:
            stream = itertools.islice(reader, batches) if batches is not None else reader
            result = await run_adaptation(stream, prepared.plan, checkpoint, batch_runner=runners)
    finally:
        if runners is not None:
            await runners.aclose()
        await gateway.aclose()
    rows = pa.concat_tables(checkpoint.iter_output(internal=True)).to_pylist()
    return rows, result.batches_resumed, runners.batches if runners is not None else 0
