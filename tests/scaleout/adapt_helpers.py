"""Planning and running one adaptation in the test process, locally or on Ray actors, into any checkpoint.

`execute` plans the run as a launch does and rebuilds its steps from the stored plan as a worker does
(`plan_run`, then `build_run`; the deterministic fake model, no response cache on the driver) and runs it
with `run_adaptation` into the checkpoint at a local path or an fsspec URL, stopping
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

from datamill.core.adapt_request import parse_adapt_request
from datamill.dataio import open_dataset
from datamill.pipelines.adapt import run_adaptation
from datamill.pipelines.checkpoint import Checkpoint
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.adaptation.prepare import RunSource, build_run, plan_run
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


def write_input(tmp_path: Path) -> RunSource:
    """`ROWS` questions and one exact duplicate (which dedup, a batch step, drops) as a jsonl file."""
    path = tmp_path / "qa.jsonl"
    rows = [
        {"id": i, "question": f"Question {i}: how do I reset device {i % 7}?", "answer": "?"}
        for i in range(ROWS)
    ]
    rows.append(dict(rows[3]) | {"id": 99})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return RunSource(path, "jsonl", local_image_files=False)


async def execute(
    source: RunSource,
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
        request = parse_adapt_request(REQUEST)
        planned = await plan_run("adapt", source, request, MODEL, options, gateway, data_dir)
        prepared = await build_run(planned.plan, source, gateway, data_dir)
        checkpoint = Checkpoint(location, "fingerprint")
        if ray_actors:
            from datamill.runners.ray_executor import RayBatchRunners

            assert planned.estimate is not None
            run = {
                "kind": "adapt",
                "model": MODEL,
                "options": planned.plan.options_record(),
                "request": planned.plan.request.to_dict(),
                "estimate": planned.estimate.to_dict(),
            }
            args = (actor_input or ActorInput(source), run, SETTINGS, actor_data_dir or data_dir, False)
            make_checkpoint = partial(Checkpoint, location, "fingerprint")
            runners = RayBatchRunners(partial(actor_plan, *args), make_checkpoint, actors=ray_actors)
        with open_dataset(source.path, format=source.format, batch_size=BATCH) as reader:
            stream = itertools.islice(reader, batches) if batches is not None else reader
            result = await run_adaptation(stream, prepared.steps, checkpoint, batch_runner=runners)
    finally:
        if runners is not None:
            await runners.aclose()
        await gateway.aclose()
    rows = pa.concat_tables(checkpoint.iter_output(internal=True)).to_pylist()
    return rows, result.batches_resumed, runners.batches if runners is not None else 0
