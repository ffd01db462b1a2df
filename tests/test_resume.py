"""A run killed mid-way resumes on restart: every row once, no model call repeated for finished batches."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import orjson

from datamill.llm.fake_server import FakeOpenAIServer

ROWS = 60
BATCH = 5


def write_input(path: Path) -> None:
    lines = ["id,question"] + [f"{i},question number {i} about topic {i * 7}" for i in range(1, ROWS + 1)]
    path.write_text("\n".join(lines) + "\n")


def routes_file(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(
        f"routes:\n  acme/*:\n    provider: openai\n    base_url: {base_url}\n    max_concurrency: 4\n"
    )
    return path


def prompt_of(body: dict) -> str:
    return body["messages"][-1]["content"]


async def start_cli(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    env = dict(os.environ, DATAMILL_HOME=str(tmp_path / "home"))
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "datamill.cli.main",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def test_killed_run_resumes_without_losing_or_repeating(tmp_path: Path):
    source = tmp_path / "in.csv"
    write_input(source)
    out = tmp_path / "out.jsonl"

    def reply(body: dict) -> str:
        return "answer to: " + prompt_of(body)

    async with FakeOpenAIServer(reply=reply, latency_s=0.02) as server:
        args = (
            "adapt",
            str(source),
            "--prompt",
            "question",
            "--recipes",
            "none",
            "--model",
            "acme/m",
            "--routes",
            str(routes_file(tmp_path, server.base_url)),
            "--batch-size",
            str(BATCH),
            "-o",
            str(out),
            "--json",
            "--no-eval",
        )
        first = await start_cli(tmp_path, *args)
        while server.count < ROWS // 2:
            await asyncio.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        assert not out.exists()
        first_prompts = [prompt_of(b) for b in server.requests]
        server.requests.clear()

        second = await start_cli(tmp_path, *args)
        stdout, stderr = await second.communicate()
        assert second.returncode == 0, stderr.decode()
        summary = json.loads(stdout)
        second_prompts = [prompt_of(b) for b in server.requests]

    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted(int(r["id"]) for r in rows) == list(range(1, ROWS + 1))
    assert all(r["enhanced_completion"] == "answer to: " + r["original_prompt"] for r in rows)
    resumed = summary["batches_resumed"]
    assert resumed >= 1
    finished_rows = resumed * BATCH
    finished_prompts = {f"question number {i} about topic {i * 7}" for i in range(1, finished_rows + 1)}
    assert finished_prompts <= set(first_prompts)
    assert not finished_prompts & set(second_prompts)
    assert len(second_prompts) == len(set(second_prompts))
    assert len(set(first_prompts) | set(second_prompts)) == ROWS
