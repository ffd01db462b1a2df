"""Deleting a Dataframer resource deletes its files from storage, not only its listing: a seed dataset's
uploaded files, a generation run's generated files and ZIP (also when its spec is force-deleted), an
anonymization run's rewritten files."""

from __future__ import annotations

from pathlib import Path

from anon_helpers import anonymized_emails
from df_waits import wait_run, wait_zip
from test_specs import seedless_spec

import dataframer
from conftest import RunningServer


def _stored(server: RunningServer, resource_id: str) -> list[Path]:
    """The files in blob storage whose key names `resource_id`."""
    root = Path(server.context.blobs.root)  # type: ignore[attr-defined]
    return [path for path in root.rglob("*") if path.is_file() and resource_id in path.as_posix()]


def _finished_run(client: dataframer.Dataframer, spec_id: str) -> str:
    run = client.dataframer.runs.create(
        spec_id=spec_id, number_of_samples=2, skip_outline=True, extra_body={"novelty_threshold": 1}
    )
    assert wait_run(client, run.id).status == "SUCCEEDED"
    return run.id


def test_a_deleted_seed_dataset_leaves_no_file(
    df_server: RunningServer, client: dataframer.Dataframer
) -> None:
    made = client.dataframer.seed_datasets.create_with_files(
        name="gone", dataset_type="MULTI_FILE", files=[("a.txt", b"first"), ("b.txt", b"second")]
    )
    assert len(_stored(df_server, made.id)) == 2
    client.dataframer.seed_datasets.delete(made.id)
    assert _stored(df_server, made.id) == []


def test_a_deleted_generation_run_leaves_no_file_nor_zip(
    df_server: RunningServer, client: dataframer.Dataframer
) -> None:
    run_id = _finished_run(client, seedless_spec(client))
    wait_zip(client, run_id)
    stored = _stored(df_server, run_id)
    assert any(path.suffix == ".zip" for path in stored)
    assert len(stored) == 6  # two samples with their metadata, the summary, the ZIP
    client.dataframer.runs.delete(run_id)
    assert _stored(df_server, run_id) == []


def test_a_force_deleted_spec_takes_its_runs_files(
    df_server: RunningServer, client: dataframer.Dataframer
) -> None:
    spec_id = seedless_spec(client)
    run_id = _finished_run(client, spec_id)
    assert _stored(df_server, run_id)
    client.dataframer.specs.delete(spec_id, force=True)
    assert _stored(df_server, run_id) == []


def test_a_deleted_anonymization_run_leaves_no_file(
    df_server: RunningServer, client: dataframer.Dataframer
) -> None:
    run_id = anonymized_emails(client, seed=3)
    assert _stored(df_server, run_id)
    client.dataframer.anonymization_runs.delete(run_id)
    assert _stored(df_server, run_id) == []
