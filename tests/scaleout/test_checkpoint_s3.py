"""Run checkpoints on S3 (moto's server): the same layout and semantics as a local directory, shared by all.

The checkpoint contract holds on S3 as in a directory (batches saved whole, listed fresh by another reader, a
new fingerprint starts over). A run interrupted on one "machine" (its own data dir) resumes on another from
the checkpoint in the bucket, skipping the saved batches, with the same rows as an uninterrupted run; and
Ray actors save a run's batches straight to the bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from adapt_helpers import BATCHES, execute, write_input
from s3_helpers import BUCKET, S3Server, moto_s3

from datamill.pipelines.checkpoint import Checkpoint


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        server.make_bucket()
        yield server


def _rows(index: int) -> list[dict[str, object]]:
    return [{"_row": index * 2 + i, "text": f"row {index}.{i}"} for i in range(2)]


def test_the_checkpoint_contract_holds_on_s3(s3: S3Server) -> None:
    url = f"s3://{BUCKET}/runs/contract"
    first = Checkpoint(url, "fp1")
    assert first.completed() == set()
    first.save(1, _rows(1), [{"row_number": 9, "step": "safety", "reason": "unsafe", "row": {}}])
    first.save(0, _rows(0), [])
    first.save(2, [], [])  # a batch whose rows were all rejected
    other = Checkpoint(url, "fp1")  # another worker opening the same run
    assert other.completed() == {0, 1, 2}
    tables = list(other.iter_output(internal=True))
    assert [r["text"] for t in tables for r in t.to_pylist()] == ["row 0.0", "row 0.1", "row 1.0", "row 1.1"]
    assert [t.column_names for t in other.iter_output()] == [["text"], ["text"]]
    assert other.output_rows() == 4
    assert [r["reason"] for r in other.iter_rejections()] == ["unsafe"]
    objects = s3.bucket_objects(prefix="runs/contract/")
    assert set(objects) == {
        "runs/contract/manifest.json",
        *(f"runs/contract/parts/{i:08d}.parquet" for i in range(3)),
        *(f"runs/contract/rejected/{i:08d}.jsonl" for i in range(3)),
    }
    changed = Checkpoint(url, "fp2")  # the run's request changed: start over
    assert changed.completed() == set()
    assert set(s3.bucket_objects(prefix="runs/contract/")) == {"runs/contract/manifest.json"}


def test_a_local_path_and_a_file_url_are_local_directories(tmp_path: Path) -> None:
    Checkpoint(tmp_path / "run", "fp").save(0, _rows(0), [])
    Checkpoint(f"file://{tmp_path / 'run2'}", "fp").save(0, _rows(0), [])
    for name in ("run", "run2"):
        assert (tmp_path / name / "parts" / "00000000.parquet").is_file()
        assert (tmp_path / name / "manifest.json").is_file()


async def test_a_run_interrupted_on_one_machine_resumes_on_another_from_s3(
    s3: S3Server, tmp_path: Path
) -> None:
    source = write_input(tmp_path)
    local, _, _ = await execute(source, tmp_path / "reference", tmp_path / "reference" / "run")
    url = f"s3://{BUCKET}/runs/moved"
    _, resumed, _ = await execute(source, tmp_path / "machine-a", url, batches=3)
    assert resumed == 0
    rows, resumed, _ = await execute(source, tmp_path / "machine-b", url)
    assert resumed == 3
    assert rows == local


async def test_ray_actors_save_batches_to_s3(s3: S3Server, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    source = write_input(tmp_path)
    local, _, _ = await execute(source, tmp_path / "reference", tmp_path / "reference" / "run")
    url = f"s3://{BUCKET}/runs/on-ray"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # after moto: actors get its endpoint
    try:
        rows, _, sent = await execute(source, tmp_path / "data", url, ray_actors=2)
    finally:
        ray.shutdown()
    assert sent == BATCHES
    assert rows == local
    parts = [k for k in s3.bucket_objects(prefix="runs/on-ray/parts/") if k.endswith(".parquet")]
    assert len(parts) == BATCHES
