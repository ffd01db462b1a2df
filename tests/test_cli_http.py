"""`datamill adapt` as a separate process against a loopback OpenAI-compatible server, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import zlib
from pathlib import Path

import orjson
import pytest

from datamill.llm.fake_server import FakeOpenAIServer, FakeResponse

SAMPLE = Path(__file__).parents[1] / "src" / "datamill" / "samples" / "support.csv"


def routes_file(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(
        "routes:\n"
        "  acme/*:\n"
        "    provider: openai\n"
        f"    base_url: {base_url}\n"
        '    model: "{suffix}"\n'
        "    input_price: 1.0\n"
        "    output_price: 2.0\n"
    )
    return path


async def run_cli(tmp_path: Path, *args: str, loop: str = "asyncio") -> tuple[int, str, str]:
    env = dict(os.environ, DATAMILL_HOME=str(tmp_path / "home"), DATAMILL_EVENT_LOOP=loop)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "datamill.cli.main",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


def answer(body: dict) -> str:
    last = body["messages"][-1]["content"]
    if "Rewrite this request" not in last:
        return "Helpful answer."
    # One rephrase per row, so no two completion requests are alike (an alike one could be a cache hit).
    return f"Clear question {zlib.crc32(last.encode())}?"


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_adapt_over_http_uses_the_routed_endpoint(tmp_path: Path, loop: str):
    async with FakeOpenAIServer(reply=answer, prompt_tokens=10, completion_tokens=5) as server:
        routes = routes_file(tmp_path, server.base_url)
        out = tmp_path / "out.jsonl"
        code, stdout, stderr = await run_cli(
            tmp_path,
            "adapt",
            str(SAMPLE),
            "--prompt",
            "question",
            "--context",
            "product",
            "--model",
            "acme/small",
            "--routes",
            str(routes),
            "-o",
            str(out),
            "--json",
            "--no-eval",
            # The scripted rephrase is unrelated to the question, so the meaning check would revert it.
            "--no-rephrase-check",
            loop=loop,
        )
        assert code == 0, stderr
        summary = json.loads(stdout)
        assert server.count == 18
        assert {r["model"] for r in server.requests} == {"small"}
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len({r["enhanced_prompt"] for r in rows}) == len(rows) == 9
    assert all(r["enhanced_prompt"].startswith("Clear question ") for r in rows)
    assert {r["enhanced_completion"] for r in rows} == {"Helpful answer."}
    assert summary["input_tokens"] == 180
    assert summary["output_tokens"] == 90
    assert summary["cost_usd"] == pytest.approx((180 * 1.0 + 90 * 2.0) / 1e6)


async def test_transient_errors_are_retried(tmp_path: Path):
    async with FakeOpenAIServer(reply=answer, fail_first=3) as server:
        routes = routes_file(tmp_path, server.base_url)
        code, stdout, stderr = await run_cli(
            tmp_path,
            "adapt",
            str(SAMPLE),
            "--prompt",
            "question",
            "--recipes",
            "none",
            "--model",
            "acme/small",
            "--routes",
            str(routes),
            "-o",
            str(tmp_path / "o.jsonl"),
            "--json",
            "--no-eval",
        )
        assert code == 0, stderr
        assert json.loads(stdout)["rows_out"] == 10
        assert server.count == 13


async def test_rejected_key_stops_the_run_and_leaves_no_output(tmp_path: Path):
    def unauthorized(body: dict) -> FakeResponse:
        return FakeResponse(401, {"error": {"message": "invalid api key"}})

    async with FakeOpenAIServer(reply=unauthorized) as server:
        routes = routes_file(tmp_path, server.base_url)
        out = tmp_path / "o.jsonl"
        code, _, stderr = await run_cli(
            tmp_path,
            "adapt",
            str(SAMPLE),
            "--prompt",
            "question",
            "--model",
            "acme/small",
            "--routes",
            str(routes),
            "-o",
            str(out),
            "-q",
            "--no-eval",
        )
    assert code == 1
    assert "401" in stderr
    assert not out.exists()
    assert list(tmp_path.glob("o.jsonl*")) == []
