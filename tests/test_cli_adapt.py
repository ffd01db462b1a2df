"""`datamill adapt` end to end: the CLI, the pipeline and the gateway on the shipped fake model."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from datamill.cli.main import cli

SAMPLE = Path(__file__).parents[1] / "src" / "datamill" / "samples" / "support.csv"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATAMILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATAMILL_ROUTES", raising=False)
    monkeypatch.delenv("DATAMILL_MODEL", raising=False)
    return CliRunner()


def adapt(runner: CliRunner, *args: str) -> tuple[int, str, dict | None]:
    result = runner.invoke(cli, ["adapt", *args], catch_exceptions=False)
    summary = None
    if result.exit_code == 0 and "--json" in args:
        summary = json.loads(result.stdout)
    return result.exit_code, result.stdout + result.stderr, summary


def read_jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


SAMPLE_ARGS = (
    "--prompt",
    "question",
    "--completion",
    "answer",
    "--context",
    "product",
    "--model",
    "fake/demo",
)


def test_adapt_sample_writes_rephrased_prompts_and_completions(runner: CliRunner, tmp_path: Path):
    out = tmp_path / "out.jsonl"
    code, text, summary = adapt(runner, str(SAMPLE), *SAMPLE_ARGS, "-o", str(out), "--json")
    assert code == 0, text
    rows = read_jsonl(out)
    # The sample holds one exact duplicate (row 3 repeats row 1 up to case and punctuation).
    assert len(rows) == 9
    assert summary["rows_in"] == 10
    assert summary["rows_out"] == 9
    assert summary["rejections_by_step"] == {"deduplication": 1}
    for row in rows:
        assert row["enhanced_prompt"]
        assert row["enhanced_completion"]
        assert row["enhanced_completion"] != row["original_prompt"]
        assert set(row) >= {"original_prompt", "original_completion", "product"}
    rejected = read_jsonl(tmp_path / "out.rejected.jsonl")
    assert rejected[0]["row_number"] == 3
    assert rejected[0]["reason"] == "exact duplicate of row 1"
    # Two calls per surviving row (rephrase and completion). The evaluation grades each row before and after
    # (two calls), compares the two answers in both orders (two more), and grades the row dedup removed on
    # the "before" side (one): every call is counted, the evaluation's too.
    calls = {step: totals["calls"] for step, totals in summary["usage_by_step"].items()}
    assert calls == {"prompt_rephrase": 9, "completion": 9, "evaluation": 9 * 2 + 9 * 2 + 1}
    assert summary["calls"] == 55
    assert summary["cache_hits"] == 0
    assert summary["input_tokens"] > 0
    assert summary["output_tokens"] > 0


def test_rerun_is_served_from_the_cache(runner: CliRunner, tmp_path: Path):
    first = tmp_path / "a.jsonl"
    second = tmp_path / "b.jsonl"
    assert adapt(runner, str(SAMPLE), *SAMPLE_ARGS, "-o", str(first), "--json")[0] == 0
    code, text, summary = adapt(runner, str(SAMPLE), *SAMPLE_ARGS, "-o", str(second), "--json")
    assert code == 0, text
    assert summary["calls"] == 0
    assert summary["cache_hits"] == 55
    assert read_jsonl(first) == read_jsonl(second)


def test_changing_the_blueprint_pays_only_for_completions(runner: CliRunner, tmp_path: Path):
    # Without metadata injection the blueprint reaches only the completion prompt.
    args = (*SAMPLE_ARGS, "--recipes", "dedup,rephrase", "--no-eval")
    assert adapt(runner, str(SAMPLE), *args, "-o", str(tmp_path / "a.jsonl"), "--json")[0] == 0
    code, _, summary = adapt(
        runner,
        str(SAMPLE),
        *args,
        "--blueprint",
        "Talk like a pirate.",
        "-o",
        str(tmp_path / "b.jsonl"),
        "--json",
    )
    assert code == 0
    assert summary["cache_hits"] == 9  # the rephrases
    assert summary["calls"] == 9  # the completions, whose system prompt changed


def test_recipes_none_skips_dedup_and_rephrase(runner: CliRunner, tmp_path: Path):
    out = tmp_path / "out.csv"
    code, text, summary = adapt(
        runner, str(SAMPLE), *SAMPLE_ARGS, "--recipes", "none", "-o", str(out), "--json"
    )
    assert code == 0, text
    assert summary["rows_out"] == 10
    assert summary["usage_by_step"]["completion"]["calls"] == 10
    assert summary["steps"] == ["column_mapping", "completion"]
    assert out.read_text().splitlines()[0].count(",") >= 3


def test_max_rows_takes_a_seeded_sample(runner: CliRunner, tmp_path: Path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.parquet"
        code, text, summary = adapt(
            runner,
            str(SAMPLE),
            *SAMPLE_ARGS,
            "--recipes",
            "none",
            "--max-rows",
            "4",
            "--seed",
            "3",
            "-o",
            str(out),
            "--json",
        )
        assert code == 0, text
        assert summary["rows_selected"] == 4
        outs.append(pq.read_table(out).column("original_prompt").to_pylist())
    assert len(outs[0]) == 4
    assert outs[0] == outs[1]


def test_unknown_column_is_a_clear_error_and_writes_nothing(runner: CliRunner, tmp_path: Path):
    out = tmp_path / "out.jsonl"
    code, text, _ = adapt(runner, str(SAMPLE), "--prompt", "nope", "--model", "fake/x", "-o", str(out))
    assert code == 2
    assert "--prompt" in text
    assert "nope" in text
    assert "question" in text  # lists the available columns
    assert not out.exists()


def test_conflicting_mapping_names_the_fields(runner: CliRunner, tmp_path: Path):
    code, text, _ = adapt(
        runner,
        str(SAMPLE),
        "--prompt",
        "question",
        "--universal-prompt",
        "Do it",
        "--context",
        "product",
        "-o",
        str(tmp_path / "o.jsonl"),
    )
    assert code == 2
    assert "universal_prompt" in text


def test_malformed_file_names_the_line(runner: CliRunner, tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("q,a\none,two\nthree,four,five\n")
    code, text, _ = adapt(
        runner, str(bad), "--prompt", "q", "--model", "fake/x", "-o", str(tmp_path / "o.jsonl")
    )
    assert code == 2
    assert "line 3" in text


def test_unknown_model_lists_configured_models(runner: CliRunner, tmp_path: Path):
    code, text, _ = adapt(
        runner, str(SAMPLE), "--prompt", "question", "--model", "nobody/none", "-o", str(tmp_path / "o.jsonl")
    )
    assert code == 2
    assert "nobody/none" in text
    assert "anthropic/" in text


def test_unknown_recipe_is_rejected(runner: CliRunner, tmp_path: Path):
    code, text, _ = adapt(
        runner,
        str(SAMPLE),
        "--prompt",
        "question",
        "--recipes",
        "dedup,magic",
        "-o",
        str(tmp_path / "o.jsonl"),
    )
    assert code == 2
    assert "magic" in text


def test_progress_bar_and_summary_are_printed(runner: CliRunner, tmp_path: Path):
    result = runner.invoke(cli, ["adapt", str(SAMPLE), *SAMPLE_ARGS, "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 0, result.output
    assert "adapting" in result.stderr
    assert "rows out" in result.stdout
    assert "from cache" in result.stdout


def test_models_command_lists_routes(runner: CliRunner):
    result = runner.invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    assert "local/smollm2-135m-instruct" in result.stdout
    assert "anthropic/" in result.stdout


@pytest.mark.parametrize(
    ("out_name", "extra", "said"),
    [
        ("out.jsonl", ("--format", "xml"), "unknown format 'xml'"),
        ("out.xml", (), "cannot tell the file format"),
    ],
)
def test_an_unwritable_output_format_is_refused_before_any_model_call(
    runner: CliRunner, tmp_path: Path, out_name: str, extra: tuple[str, ...], said: str
):
    out = tmp_path / "new" / out_name
    code, text, _ = adapt(runner, str(SAMPLE), *SAMPLE_ARGS, "-o", str(out), *extra)
    assert code != 0
    assert said in text
    assert "csv, json, jsonl, parquet, tsv" in text
    assert not (tmp_path / "new").exists()
    # No run started: nothing was checkpointed and no reply was cached.
    assert not (tmp_path / "home" / "runs").exists()


async def test_the_python_api_checks_the_output_before_any_model_call(tmp_path: Path):
    from datamill.core.errors import DataFormatError
    from datamill.llm.gateway import Gateway
    from datamill.llm.providers.fake import FakeProvider
    from datamill.llm.routing import Routing
    from datamill.services.adaptation.adapt import AdaptJob, adapt_file_async
    from datamill.services.settings.entry import Settings

    fake = FakeProvider()
    (tmp_path / "folder.jsonl").mkdir()
    settings = Settings(data_dir=tmp_path / "home")
    body = {"column_mapping": {"prompt": "question", "completion": "answer"}}
    async with Gateway(Routing.load(), providers={"fake": fake}) as gateway:
        for output, fmt, said in (
            (tmp_path / "out.xml", None, "cannot tell the file format"),
            (tmp_path / "out.jsonl", "xml", "unknown format"),
            (tmp_path / "missing" / "out.jsonl", None, "does not exist"),
            (tmp_path / "folder.jsonl", None, "is a directory"),
        ):
            job = AdaptJob(SAMPLE, output, model="fake/demo", output_format=fmt)
            with pytest.raises(DataFormatError, match=said):
                await adapt_file_async(job, body, settings=settings, gateway=gateway)
    assert fake.calls == []


def test_a_repeated_column_is_renamed_and_the_summary_says_so(runner: CliRunner, tmp_path: Path):
    data = tmp_path / "dup.csv"
    data.write_text("question,answer,answer\nHow do I reset it?,Old answer,Second answer\n")
    out = tmp_path / "out.jsonl"
    args = ["--prompt", "question", "--completion", "answer", "--recipes", "none", "--model", "fake/demo"]
    code, text, summary = adapt(runner, str(data), *args, "-o", str(out), "--json")
    assert code == 0, text
    assert summary is not None
    assert any("'answer_2'" in note for note in summary["notes"])
    (row,) = read_jsonl(out)
    assert row["original_completion"] == "Old answer"
    assert row["answer_2"] == "Second answer"
