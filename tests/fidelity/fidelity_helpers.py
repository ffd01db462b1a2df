"""Row-fidelity invariants: what every adaptation must hold, checked against the provider simulator's log.

- every context value, system message, blueprint and length constraint of a row reaches the model request
  that needs it (`assert_completion_requests_carry`, `assert_chat_requests_carry`);
- no quirk output (refusals, cut text, reasoning, fences, prose, empty answers) is kept as data
  (`assert_no_quirk_output`);
- every input row is in the output or in the rejected rows with a reason (`assert_accounted`);
- usage and cost totals equal what the simulator billed (`assert_usage_matches`).
"""

from __future__ import annotations

import json
import math
import random
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from datamill.cli.main import cli
from datamill.llm.simulator import REFUSAL_FIELD, REFUSAL_TEXT, ProviderSimulator, SimLog
from datamill.llm.simulator.answers import PROSE_AFTER, PROSE_BEFORE, Responder, clean_answer
from datamill.llm.simulator.formats import WireRequest

INPUT_PRICE, OUTPUT_PRICE, CACHED_INPUT_PRICE, CACHE_WRITE_PRICE = 1.0, 2.0, 0.1, 1.25
MODELS = {"openai": "sim-openai/m", "anthropic": "sim-anthropic/m", "gemini": "sim-gemini/m"}
#: Text that only a quirk puts in an answer.
MARKERS = (
    REFUSAL_TEXT,
    REFUSAL_FIELD,
    "<think>",
    "</think>",
    "```",
    PROSE_BEFORE.strip(),
    PROSE_AFTER.strip(),
)
#: Output columns a model writes (a column absent from a mode's output is skipped).
GENERATED = ("enhanced_prompt", "enhanced_completion", "reasoning", "chosen", "rejected")


@dataclass
class Run:
    """One finished ``datamill adapt`` and what the simulator saw of it."""

    code: int
    output: str
    summary: dict[str, Any] | None
    rows: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    log: SimLog
    input_ids: list[str]
    crashed: bool = False


def routes(sim: ProviderSimulator, tmp_path: Path) -> Path:
    return sim.write_routes(
        tmp_path / "routes.yaml",
        input_price=INPUT_PRICE,
        output_price=OUTPUT_PRICE,
        cached_input_price=CACHED_INPUT_PRICE,
        cache_write_price=CACHE_WRITE_PRICE,
        vision=True,
    )


def adapt(
    sim: ProviderSimulator,
    tmp_path: Path,
    rows: list[dict[str, Any]],
    *args: str,
    model: str = MODELS["openai"],
) -> Run:
    """Run ``datamill adapt`` in-process on ``rows`` (each with an ``id``) against the simulator."""
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    out = tmp_path / "out.jsonl"
    argv = ["adapt", str(source), "--model", model, "--routes", str(routes(sim, tmp_path)), "-o", str(out)]
    argv += ["--json", "-q", "--no-eval", "--no-cache", *args]
    env = {"DATAMILL_HOME": str(tmp_path / "home"), "DATAMILL_ROUTES": None, "DATAMILL_MODEL": None}
    result = CliRunner().invoke(cli, argv, env=env)
    summary = None
    if result.exit_code == 0:
        summary = json.loads(result.stdout)
    rejected_path = out.with_name("out.rejected.jsonl")
    return Run(
        result.exit_code,
        result.output,
        summary,
        _jsonl(out),
        _jsonl(rejected_path),
        sim.log,
        [str(row["id"]) for row in rows],
        result.exception is not None and not isinstance(result.exception, SystemExit),
    )


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


# ---- invariants -------------------------------------------------------------------------------------------


def assert_accounted(run: Run) -> None:
    """Every input row is in the output or rejected with a reason, or the run stopped with a clear error."""
    assert not run.crashed, run.output
    if run.code != 0:
        assert run.output.strip(), "the run failed without saying why"
        return
    out = {str(row["id"]) for row in run.rows}
    rejected = {str(r["row"]["id"]): r for r in run.rejected if "row" in r and "id" in (r["row"] or {})}
    rejected |= {str(r["id"]): r for r in run.rejected if "id" in r}
    for row_id in run.input_ids:
        if row_id in out:
            continue
        assert row_id in rejected, f"row {row_id} is neither in the output nor in the rejected rows"
        assert str(rejected[row_id].get("reason") or "").strip(), (
            f"row {row_id} was rejected without a reason"
        )


def assert_no_quirk_output(run: Run, input_columns: tuple[str, ...] = ()) -> None:
    """No output value holds a quirk's text, a cut answer, or is empty where a model wrote it."""
    cut = {e.text for e in run.log if e.behaviour == "truncation" and e.text}
    for row in run.rows:
        for column, value in row.items():
            if column in input_columns:
                continue
            for text in _strings(value):
                for marker in MARKERS:
                    assert marker not in text, f"row {row.get('id')}: {column} keeps quirk output: {text!r}"
                assert text not in cut, f"row {row.get('id')}: {column} keeps a truncated answer: {text!r}"
        for column in GENERATED:
            if column in row and row[column] is not None:
                assert str(row[column]).strip(), f"row {row.get('id')}: {column} is empty"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def assert_usage_matches(run: Run) -> None:
    """The run's token and cost totals are what the simulator billed (when it finished)."""
    if run.code != 0:
        return
    assert run.summary is not None, run.output
    billed = run.log.billed()
    assert run.summary["input_tokens"] == billed.input_tokens, (run.summary["input_tokens"], billed)
    assert run.summary["output_tokens"] + run.summary["thinking_tokens"] == (
        billed.output_tokens + billed.reasoning_tokens
    )
    assert run.summary.get("cached_input_tokens", 0) == billed.cached_input_tokens
    expected = billed.cost_usd(
        INPUT_PRICE, OUTPUT_PRICE, cached_input_price=CACHED_INPUT_PRICE, cache_write_price=CACHE_WRITE_PRICE
    )
    assert math.isclose(run.summary["cost_usd"], expected, rel_tol=1e-3, abs_tol=2e-6), (
        run.summary["cost_usd"],
        expected,
    )


def requests_answered_with(run: Run, text: str) -> list[str]:
    """The prompts of the requests whose answer was ``text``."""
    wanted = text.strip()
    return [e.prompt for e in run.log if e.status == 200 and answer_text(e.text) == wanted]


def answer_text(sent: str | None) -> str:
    """The answer in a reply: without the reasoning a ``think`` reply puts before it."""
    text = (sent or "").strip()
    if text.startswith("<think>") and "</think>" in text:
        text = text.split("</think>", 1)[1].strip()
    return text


def assert_completion_requests_carry(
    run: Run, needs: dict[str, list[str]], column: str = "enhanced_completion"
) -> None:
    """For each output row, the request that wrote ``column`` read every text ``needs[row id]`` lists."""
    assert run.rows, run.output
    for row in run.rows:
        prompts = requests_answered_with(run, row[column])
        assert prompts, f"row {row['id']}: no request was answered with its {column}"
        for prompt in prompts:
            for text in needs[str(row["id"])]:
                assert text in prompt, (
                    f"row {row['id']}: {text!r} did not reach the {column} request:\n{prompt}"
                )


# ---- the rows and modes the suite runs -------------------------------------------------------------------

BLUEPRINT = "Speak like a pirate and sign every answer with Captain Flint."
#: What ``--length concise`` tells the model (`datamill.core.brand.Length.CONCISE`).
LENGTH_TEXT = "between 40 and 150 tokens"
QUESTIONS = (
    "How do I reset my password?",
    "Can I export my contacts to a file?",
    "Why is dark mode lost after a restart?",
    "How do I add a second admin to my account?",
)
PRODUCTS = ("Acme Cloud", "Acme CRM", "Acme Mobile", "Acme Billing")
UNIVERSAL = "Write a short product blurb."


def png(seed: int) -> bytes:
    """A valid 1x1 PNG whose pixel colour depends on ``seed``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes([0, seed % 256, 0, 0]))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def rows(tmp_path: Path, count: int = 3) -> list[dict[str, Any]]:
    """Rows: id, question, two context columns, an earlier answer, an image, a chat with a system turn."""
    made = []
    for i in range(1, count + 1):
        image = tmp_path / f"image{i}.png"
        image.write_bytes(png(i))
        question = (
            QUESTIONS[(i - 1) % len(QUESTIONS)] if i <= len(QUESTIONS) else f"Question {i}: {_words(i)}?"
        )
        made.append(
            {
                "id": str(i),
                "question": question,
                "product": f"{PRODUCTS[(i - 1) % len(PRODUCTS)]} {_words(i + 100)}",
                "price": f"{i * 7} USD",
                "answer": f"An earlier answer, case {i}: restart the app and sign in again.",
                "image": str(image),
                "conversation": [
                    {"role": "system", "content": f"You are support agent number {i}, always polite."},
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": "An old answer."},
                    {"role": "user", "content": f"And what about the mobile app, case {i}?"},
                    {"role": "assistant", "content": "Another old answer."},
                ],
            }
        )
    return made


_WORDS = ("amber", "birch", "cobalt", "delta", "ember", "fjord", "garnet", "harbor", "iris", "jasper", "kelp")


def _words(seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(_WORDS) + rng.choice(_WORDS) for _ in range(3))


INPUT_COLUMNS = (
    "id",
    "question",
    "product",
    "price",
    "image",
    "conversation",
    "original_prompt",
    "original_chat",
    "answer",
    "original_completion",
)
STYLE = ("--blueprint", BLUEPRINT, "--length", "concise")
MODES: dict[str, tuple[str, ...]] = {
    "prompt": ("--prompt", "question", "--context", "product", "--context", "price", *STYLE),
    "universal": ("--universal-prompt", UNIVERSAL, "--context", "product", "--context", "price", *STYLE),
    "chat": ("--chat", "conversation", *STYLE),
    "improve": ("--prompt", "question", "--completion", "answer", "--context", "product", *STYLE),
    "image": ("--prompt", "question", "--image", "image", "--context", "product", *STYLE),
    "expansion": (
        "--prompt",
        "question",
        "--context",
        "product",
        "--translate",
        "es",
        "--sample-rate",
        "1",
        *STYLE,
    ),
    "pairs": ("--prompt", "question", "--context", "product", "--training-type", "preference_pairs", *STYLE),
    "reasoning": (
        "--prompt",
        "question",
        "--context",
        "product",
        "--recipes",
        "rephrase,reasoning,metadata",
        *STYLE,
    ),
}


#: Quirks at the rates a busy production day shows.
REALISTIC_MIX = {
    "refusal_text": 0.02,
    "refusal_field": 0.02,
    "truncation": 0.02,
    "think": 0.03,
    "empty": 0.02,
    "content_filter": 0.01,
    "json_fence": 0.01,
    "prose_json": 0.01,
    "rate_limit": 0.03,
    "server_error": 0.01,
    "overloaded": 0.01,
}


def consistent_pair_judge(echo_chars: int) -> Responder:
    """The simulator's own answers, except two judges whose verdicts must follow what they read.

    The pair judge prefers the longer answer in either order: the simulator's schema-valid default verdict
    names answer A whatever A is, which the judging protocol rightly counts as inconsistent. The blind
    conformance judge reads each property's value from the sample, where the simulator's echo of the writing
    prompt put it ("Sentiment: negative"); its default would read every sample as each property's first value.
    """

    def respond(request: WireRequest) -> str:
        if request.system.startswith("You check samples of a synthetic dataset."):
            sample = request.last_user.split("<<<BEGIN SAMPLE>>>")[1].split("<<<END SAMPLE>>>")[0]
            axes = (request.schema or {})["properties"]["properties"]["properties"]
            read = {
                name: next((v for v in spec["enum"] if f"{name}: {v}" in sample), "unclear")
                for name, spec in axes.items()
            }
            return json.dumps({"rationale": "read", "properties": read, "violations": [], "conforms": True})
        if request.system.startswith("You are a careful judge of assistant answers"):
            shown = request.last_user
            a = shown.split("<<<BEGIN ANSWER A>>>")[1].split("<<<END ANSWER A>>>")[0]
            b = shown.split("<<<BEGIN ANSWER B>>>")[1].split("<<<END ANSWER B>>>")[0]
            verdict = "A=B" if len(a) == len(b) else "A>>B" if len(a) > len(b) else "B>>A"
            return json.dumps({"rationale": "The longer answer covers more.", "verdict": verdict})
        answer = clean_answer(request, echo_chars=echo_chars)
        return orjson.dumps(answer.data).decode() if answer.data is not None else answer.text

    return respond
