"""`datamill adapt` as a separate process against loopback endpoints that misbehave as real providers do.

What a user must see: replies that are not answers never reach the output and every row is accounted for;
a run that cannot succeed stops early, says why, and exits non-zero without writing an output file.
"""

from __future__ import annotations

import asyncio
import csv
import os
import socket
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from datamill.llm.fake_server import FakeOpenAIServer, FakeResponse

SAMPLE = Path(__file__).parents[1] / "src" / "datamill" / "samples" / "support.csv"
GARBAGE = ("can't help", "cannot help", "<think>", "</think>", "CUT-OFF", "refus")


def routes_file(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(
        f'routes:\n  acme/*:\n    provider: openai\n    base_url: {base_url}\n    model: "{{suffix}}"\n'
    )
    return path


async def run_cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = dict(os.environ, DATAMILL_HOME=str(tmp_path / "home"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "datamill.cli.main",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


async def adapt(tmp_path: Path, base_url: str, source: Path, *extra: str) -> tuple[int, str, str]:
    return await run_cli(
        tmp_path,
        "adapt",
        str(source),
        "--prompt",
        "question",
        "--model",
        "acme/small",
        "--routes",
        str(routes_file(tmp_path, base_url)),
        "-o",
        str(tmp_path / "out.jsonl"),
        "--json",
        "--no-eval",
        "--no-rephrase-check",
        # No dedup: the generated rows are near-duplicates of each other, and every row must reach the model.
        "--recipes",
        "rephrase",
        *extra,
    )


def many_rows(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "many.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question"])
        writer.writerows([f"How do I reset password number {i}?"] for i in range(n))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def completion(content: Any, finish: str = "stop", **message: Any) -> FakeResponse:
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": content, **message},
        "finish_reason": finish,
    }
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    return FakeResponse(200, {"id": "c", "object": "chat.completion", "choices": [choice], "usage": usage})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- runs that cannot succeed ------------------------------------------------------------------------------


async def test_a_refused_port_stops_the_run_naming_the_route_and_cause(tmp_path: Path) -> None:
    code, _, stderr = await adapt(tmp_path, f"http://127.0.0.1:{closed_port()}/v1", many_rows(tmp_path, 300))

    assert code == 1
    assert "acme/small" in stderr
    assert "refused" in stderr
    assert "failed calls in a row" in stderr
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        (FakeResponse(301, "", {"location": "https://api.example.com/v1/chat/completions"}), "redirect"),
        (FakeResponse(400, {"error": {"message": "Unsupported parameter: 'temperature'"}}), "Unsupported"),
    ],
)
async def test_an_endpoint_that_fails_every_request_stops_early(
    tmp_path: Path, answer: FakeResponse, named: str
) -> None:
    async with FakeOpenAIServer(reply=lambda body: answer) as server:
        code, _, stderr = await adapt(tmp_path, server.base_url, many_rows(tmp_path, 300))

    assert code == 1
    assert named in stderr
    # Without the stop every one of the 300 rows was sent (and a redirect retried five times).
    assert server.count < 100
    assert not (tmp_path / "out.jsonl").exists()


async def test_insufficient_quota_stops_at_once(tmp_path: Path) -> None:
    quota = {"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota"}}
    answer = FakeResponse(429, quota, {"retry-after": "1"})
    async with FakeOpenAIServer(reply=lambda body: answer) as server:
        code, _, stderr = await adapt(tmp_path, server.base_url, many_rows(tmp_path, 300))

    assert code == 1
    assert "no quota or credit left" in stderr
    assert server.count < 100


async def test_a_run_whose_every_row_is_refused_fails_with_the_reason(tmp_path: Path) -> None:
    refusal = completion("I'm sorry, but I can't help with that.")
    async with FakeOpenAIServer(reply=lambda body: refusal) as server:
        code, stdout, stderr = await adapt(tmp_path, server.base_url, SAMPLE)

    assert code == 1, stdout
    assert "every row was rejected (10 rows)" in stderr
    assert "refused" in stderr
    assert not (tmp_path / "out.jsonl").exists()
    rejected = read_jsonl(tmp_path / "out.rejected.jsonl")
    assert sorted(r["row_number"] for r in rejected) == list(range(1, 11))
    assert all(r["step"] == "prompt_rephrase" and "the model refused" in r["reason"] for r in rejected)
    assert server.count == 20  # each row's first call, asked twice


# -- quirks mixed into good answers ------------------------------------------------------------------------


class Quirky:
    """Answers like a real provider: some requests get a quirk the first time they are seen."""

    QUIRKS = (
        completion("I can't help with that."),
        completion(None, refusal="I'm sorry, I cannot assist with that request."),
        completion("", "stop"),
        completion("The answer is CUT-OFF", "length"),
        completion("", "content_filter"),
    )

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def __call__(self, body: dict[str, Any]) -> FakeResponse:
        last = body["messages"][-1]["content"]
        key = orjson.dumps(body["messages"]).decode()
        self.seen[key] += 1
        digest = zlib.crc32(key.encode())
        if self.seen[key] == 1 and digest % 3 == 0:
            return self.QUIRKS[digest % len(self.QUIRKS)]
        if "Rewrite this request" in last:
            return completion(f"<think>The user wants clarity.</think>Clear question {digest}?")
        return completion("Helpful answer.", reasoning_content="Think step by step.")


async def test_quirky_replies_never_reach_the_output_and_every_row_is_accounted_for(tmp_path: Path) -> None:
    quirky = Quirky()
    async with FakeOpenAIServer(reply=quirky) as server:
        code, stdout, stderr = await adapt(tmp_path, server.base_url, many_rows(tmp_path, 60))
        requests = server.count

    assert code == 0, stderr
    summary = orjson.loads(stdout)
    rows = read_jsonl(tmp_path / "out.jsonl")
    # Each quirk clears when asked again, so every row is delivered and none is rejected.
    assert summary["rows_out"] == len(rows) == 60
    assert not (tmp_path / "out.rejected.jsonl").exists()
    for row in rows:
        for column in ("enhanced_prompt", "enhanced_completion"):
            assert row[column], row
            assert not any(mark.lower() in row[column].lower() for mark in GARBAGE), row
    assert {r["enhanced_completion"] for r in rows} == {"Helpful answer."}
    assert all(r["enhanced_prompt"].startswith("Clear question ") for r in rows)
    assert requests > 120  # the quirky first replies were asked again


async def test_a_run_whose_every_image_url_is_refused_fails_naming_the_fetch_policy(tmp_path: Path) -> None:
    source = tmp_path / "images.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "image"])
        writer.writerows([f"What is in picture {i}?", f"http://127.0.0.1:9/picture{i}.png"] for i in range(6))
    out = tmp_path / "out.jsonl"
    code, _, stderr = await run_cli(
        tmp_path,
        "adapt",
        str(source),
        "--prompt",
        "question",
        "--image",
        "image",
        "--model",
        "fake/demo",
        "-o",
        str(out),
        "--no-eval",
        "-q",
    )

    assert code == 1
    assert "every row was rejected (6 rows); all of them by image_fetch" in stderr
    assert "loopback" in stderr
    assert not out.exists()
    rejected = read_jsonl(tmp_path / "out.rejected.jsonl")
    assert sorted(r["row_number"] for r in rejected) == list(range(1, 7))
