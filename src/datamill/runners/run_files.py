"""Where a run keeps its data: a local directory, or a prefix on object storage (any fsspec URL).

By default a run's checkpoint and output live in ``<data_dir>/runs/<run_id>/``, which every API and worker
process must share. With ``DATAMILL_RUN_DATA_URL`` (e.g. ``s3://bucket/datamill/runs``) they live under
``<url>/<run_id>/`` instead, so workers and API processes on different machines need no shared volume: any
worker resumes a run from the bucket, and any API process serves its download. `run_location` says where;
`datamill.dataio.folder.Folder` lists, reads and writes the files there, the same way for both.
"""

from __future__ import annotations

from pathlib import Path

from datamill.dataio.folder import Location

__all__ = ["Location", "run_location"]


def run_location(data_dir: Path, run_id: str, runs_url: str | None = None) -> Location:
    """Where run `run_id` keeps its checkpoint and output."""
    if runs_url:
        return f"{runs_url.rstrip('/')}/{run_id}"
    return data_dir / "runs" / run_id
