"""`datamill spec create|validate` and `datamill generate` end to end on the shipped fake model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from datamill.cli.main import cli
from datamill.core.spec import parse_spec_yaml


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATAMILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATAMILL_ROUTES", raising=False)
    monkeypatch.delenv("DATAMILL_MODEL", raising=False)
    return CliRunner()


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds"
    folder.mkdir()
    for i, text in enumerate(["The phone is great.", "The laptop broke.", "It is fine, I guess."]):
        (folder / f"review{i}.txt").write_text(text)
    return folder


def test_spec_create_then_generate_jsonl(runner: CliRunner, tmp_path: Path, seeds: Path):
    spec_path = tmp_path / "spec.yaml"
    created = runner.invoke(cli, ["spec", "create", str(seeds), "-o", str(spec_path), "--model", "fake/test"])
    assert created.exit_code == 0, created.output
    spec = parse_spec_yaml(spec_path.read_text())
    assert spec.metadata["seed_paths"] == [str(seeds.resolve())]
    assert spec.metadata["dataset_type"] == "MULTI_FILE"
    out = tmp_path / "out.jsonl"
    args = ["generate", "--spec", str(spec_path), "-n", "4", "-o", str(out), "--model", "fake/test"]
    # The fake model writes the same text for the same properties: the novelty gate would refuse copies.
    args += ["--novelty-threshold", "1"]
    args += ["--filtering-types", "structural,conformance", "--revision-types", "consistency", "--json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["delivered"] == 4
    assert summary["candidates"] >= 4
    assert summary["runtime_params"]["revision_types"] == ["consistency"]
    assert len(out.read_text().splitlines()) == 4
    assert (tmp_path / "out.summary.json").is_file()


def test_seedless_spec_and_folder_output(runner: CliRunner, tmp_path: Path):
    spec_path = tmp_path / "spec.yaml"
    args = ["spec", "create", "-o", str(spec_path), "--model", "fake/test", "--objectives", "Haiku on rain"]
    assert runner.invoke(cli, args).exit_code == 0
    out = tmp_path / "samples"
    args = ["generate", "--spec", str(spec_path), "-n", "2", "-o", str(out), "--model", "fake/test"]
    result = runner.invoke(cli, [*args, "--skip-outline", "--novelty-threshold", "1"])
    assert result.exit_code == 0, result.output
    assert "delivered 2 samples" in result.output
    assert sorted(p.name for p in out.glob("sample_*.txt")) == ["sample_1.txt", "sample_2.txt"]


def test_bad_inputs_name_the_field(runner: CliRunner, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec:\n  description: d\n  data_property_variations: [{property_name: A}]\n")
    result = runner.invoke(cli, ["spec", "validate", str(bad)])
    assert result.exit_code == 2
    assert "spec.data_property_variations[0].property_values" in result.output
    good = tmp_path / "good.yaml"
    good.write_text("spec:\n  description: d\n")
    args = ["generate", "--spec", str(good), "-n", "0", "-o", str(tmp_path / "o.jsonl"), "--model", "fake/t"]
    result = runner.invoke(cli, [*args, "--revision-types", "grammar"])
    assert result.exit_code == 2
    assert "number_of_samples" in result.output
    assert "revision_types[0]" in result.output
    assert runner.invoke(cli, ["spec", "create", "-o", str(tmp_path / "x.yaml")]).exit_code == 2


def test_every_generation_command_uses_the_datamill_model_setting(
    runner: CliRunner, tmp_path: Path, seeds: Path, monkeypatch: pytest.MonkeyPatch
):
    # A routing file whose own default is another (fake) model: the setting must win over it.
    routes = tmp_path / "routes.yaml"
    routes.write_text("default_model: fake/routing-default\nroutes: {}\n")
    monkeypatch.setenv("DATAMILL_ROUTES", str(routes))
    monkeypatch.setenv("DATAMILL_MODEL", "fake/from-setting")
    spec_path = tmp_path / "spec.yaml"
    created = runner.invoke(cli, ["spec", "create", str(seeds), "-o", str(spec_path)])
    assert created.exit_code == 0, created.output
    out = tmp_path / "out.jsonl"
    args = [
        "generate",
        "--spec",
        str(spec_path),
        "-n",
        "2",
        "-o",
        str(out),
        "--json",
        "--novelty-threshold",
        "1",
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["usage"]["by_model"]) == {"fake/from-setting"}
    evaluated = runner.invoke(cli, ["spec", "evaluate", str(spec_path), "--samples", str(out)])
    assert evaluated.exit_code == 0, evaluated.output
    assert "judge fake/from-setting" in evaluated.output
    # A model named on the command line still wins over the setting.
    named = runner.invoke(
        cli, ["spec", "evaluate", str(spec_path), "--samples", str(out), "--model", "fake/named"]
    )
    assert "judge fake/named" in named.output


async def test_the_default_model_of_every_role_is_the_setting_else_the_routing_default(tmp_path: Path):
    from datamill.services.adaptation.adapt import make_gateway
    from datamill.services.settings.entry import Settings
    from datamill.services.settings.runs import RunSettings

    routes = tmp_path / "routes.yaml"
    routes.write_text("default_model: fake/routing-default\nroutes: {}\n")
    gateway = make_gateway(Settings(tmp_path / "home", routes, "fake/from-setting"), use_cache=False)
    assert gateway.role("spec").name == "fake/from-setting"
    assert gateway.role("judge").name == "fake/from-setting"
    plain = make_gateway(Settings(tmp_path / "home", routes, None), use_cache=False)
    assert plain.role("generation").name == "fake/routing-default"
    # The server's generation, spec and evaluation jobs build their gateways from the run settings.
    server_settings = RunSettings(model="fake/from-setting", routes_path=routes).llm_settings(tmp_path)
    server = make_gateway(server_settings, use_cache=False)
    assert server.role("generation").name == server.role("spec").name == "fake/from-setting"
    for made in (gateway, plain, server):
        await made.aclose()
