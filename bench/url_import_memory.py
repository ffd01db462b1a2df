"""Peak memory of an import by URL against the size of the file, in a fresh interpreter per size.

A loopback server streams a file of --size-mb / 4 and of --size-mb megabytes; `UrlImportService` fetches
each into a local blob store through the safe fetcher. The child process records its peak resident set size
(VmHWM) before and after the import. If the import streams to storage, the peak stays flat while the file
grows fourfold. Writes bench/results/url_import_memory.json and prints a Markdown table.

    python -m bench.url_import_memory --size-mb 200
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._support import write_result

RESULTS = Path(__file__).parent / "results" / "url_import_memory.json"

_CHILD = r"""
import asyncio, json, sys, threading
from pathlib import Path
from aiohttp import web

def peak_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")

size, folder = int(sys.argv[1]), Path(sys.argv[2])
from datamill.services.datasets.url_import import UrlImportService
from datamill.store import LocalBlobStore, Store
from datamill.text.fetch_policy import FetchPolicy

async def big(request):
    response = web.StreamResponse(headers={"content-type": "text/csv"})
    await response.prepare(request)
    chunk = b"question,answer\n" * 4096
    sent = 0
    while sent < size:
        await response.write(chunk)
        sent += len(chunk)
    return response

loop = asyncio.new_event_loop()
app = web.Application(); app.router.add_get("/big.csv", big)
runner = web.AppRunner(app); loop.run_until_complete(runner.setup())
site = web.TCPSite(runner, "127.0.0.1", 0); loop.run_until_complete(site.start())
port = site._server.sockets[0].getsockname()[1]
threading.Thread(target=loop.run_forever, daemon=True).start()

store = Store.from_url(f"sqlite:///{folder}/db.sqlite"); store.migrate()
service = UrlImportService(store, LocalBlobStore(folder / "blobs"), max_bytes=size * 2,
                           policy=FetchPolicy.with_allowed(["127.0.0.1"]))
before = peak_mb()
info = asyncio.run(service._fetch(f"http://127.0.0.1:{port}/big.csv", "bench/big.csv", "csv"))
print(json.dumps({"bytes": info.size, "peak_before_mb": before, "peak_after_mb": peak_mb()}))
"""


def _one(size_mb: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(size_mb * 1024 * 1024), folder],
            capture_output=True,
            text=True,
            check=True,
        )
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    row["size_mb"] = size_mb
    row["added_mb"] = row["peak_after_mb"] - row["peak_before_mb"]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Peak memory of an import by URL.")
    parser.add_argument("--size-mb", type=int, default=200)
    args = parser.parse_args(argv)
    rows = [_one(max(1, args.size_mb // 4)), _one(args.size_mb)]
    write_result(RESULTS, {"benchmark": "url_import_memory", "results": rows}, _markdown)
    return 0


def _markdown(result: dict[str, Any]) -> str:
    lines = ["| file MB | peak RSS before MB | peak RSS after MB | added MB |", "|---:|---:|---:|---:|"]
    for row in result["results"]:
        lines.append(
            f"| {row['size_mb']} | {row['peak_before_mb']:.0f} | {row['peak_after_mb']:.0f} "
            f"| {row['added_mb']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
