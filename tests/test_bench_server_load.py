"""The server load benchmark, run tiny: every run finishes and nothing is lost while the provider fails.

It starts ``datamill serve`` and the fake provider in processes of their own and drives them with the
official SDKs, exactly as the full benchmark does, with two Adaption clients and one Dataframer client.
Only behaviour is checked here (every row and sample arrived, the faults were injected); the numbers are
the benchmark's business.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_tiny_load_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "server_load.json"
    args = ["--clients", "2", "--df-clients", "1", "--runs", "1", "--rows", "8", "--samples", "2"]
    args += ["--error-rate", "0.2", "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "DATAMILL_TEST_POSTGRES_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.server_load", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["nothing_lost"] is True
    assert result["failures"] == []
    checks = result["checks"]
    assert checks["adapt_runs"] == {"planned": 2, "launched": 2, "succeeded": 2}
    assert checks["adapt_rows"] == {"uploaded": 16, "downloaded_or_rejected": 16}
    assert checks["dataframer_runs"] == {"planned": 1, "launched": 1, "succeeded": 1}
    assert checks["dataframer_samples"] == {"asked": 2, "in_zips": 2}
    assert int(result["provider"]["statuses"].get("500", 0)) > 0  # faults were injected, and ridden out
    operations = {"adaption.upload_file", "adaption.download", "dataframer.zip_download"}
    assert operations <= result["operations"].keys()
    assert "| operation |" in result["summary_md"]
