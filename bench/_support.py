"""What the benchmarks share: a fake provider in its own process, CPU, peak memory and the median run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def fake_server(
    latency: float,
    *,
    max_concurrent: int | None = None,
    retry_after: float = 1.0,
    extra_args: Sequence[str] = (),
) -> Iterator[tuple[str, int]]:
    """``python -m datamill.llm.fake_server`` on a free loopback port for the block: (base URL, pid)."""
    port = free_port()
    cmd = [sys.executable, "-m", "datamill.llm.fake_server", "--port", str(port), "--latency", str(latency)]
    cmd += list(extra_args)
    if max_concurrent is not None:
        cmd += ["--max-concurrent", str(max_concurrent), "--retry-after", str(retry_after)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_up(base_url, proc)
        yield base_url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(base_url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fake server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(base_url + "/models", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"fake server at {base_url} did not answer within 60 s")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process (Linux); -1 when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return -1.0


def cpu_s() -> float:
    """User + system CPU seconds of this process."""
    times = os.times()
    return times.user + times.system


def vm_hwm_mb() -> float:
    """Peak resident set size of this process (``VmHWM``) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run with the median ``key`` (the upper middle one of an even count)."""
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2]


def tenant_keys(database_url: str, count: int) -> list[str]:
    """One key per client, each for a tenant of its own, written straight to the server's database."""
    from datamill.services.tenants import TenantService
    from datamill.store import Store

    store = Store.from_url(database_url)
    store.migrate()
    tenants = TenantService(store, default_credits=1e9)
    suffix = os.urandom(3).hex()
    keys = [tenants.create_key(f"load-{suffix}-{i}").key for i in range(count)]
    store.close()
    return keys


def start_serve(data_dir: Path, env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    """``datamill serve`` on a free loopback port with `env`, logging to ``serve.log``; (URL, process)."""
    port = free_port()
    log = (data_dir / "serve.log").open("ab")
    cmd = [
        sys.executable,
        "-m",
        "datamill.cli.main",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"datamill serve exited: {(data_dir / 'serve.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return base_url, proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("datamill serve did not answer within 120 s")


def write_result(path: Path, result: dict[str, Any], markdown: Callable[[dict[str, Any]], str]) -> None:
    """Add the result's Markdown summary, write it as JSON to `path` and print the summary."""
    result["summary_md"] = markdown(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(result["summary_md"])
    print(f"\nwrote {path}")
