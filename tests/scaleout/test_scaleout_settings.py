"""The scale-out settings are read from the environment and checked, with messages naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamill.core.errors import ConfigError
from datamill.services.settings.runs import RunSettings


def test_scale_out_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    settings = RunSettings.from_env(
        {
            "DATAMILL_EXECUTOR": "Ray",
            "DATAMILL_RAY_ADDRESS": "ray://head:10001",
            "DATAMILL_RAY_ACTORS": "4",
            "DATAMILL_SHARED_CONCURRENCY": "yes",
            "DATAMILL_CACHE_COMMIT_EVERY": "32",
            "DATAMILL_RUN_DATA_URL": "s3://bucket/runs/",
        }
    )
    assert (settings.executor, settings.ray_address, settings.ray_actors) == ("ray", "ray://head:10001", 4)
    assert (settings.shared_concurrency, settings.cache_commit_every) == (True, 32)
    assert settings.run_location(tmp_path, "run_1") == "s3://bucket/runs/run_1"
    default = RunSettings.from_env({})
    assert (default.executor, default.shared_concurrency, default.cache_commit_every) == ("local", False, 1)
    assert default.run_location(tmp_path, "run_1") == tmp_path / "runs" / "run_1"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATAMILL_EXECUTOR", "dask"),
        ("DATAMILL_RAY_ACTORS", "0"),
        ("DATAMILL_SHARED_CONCURRENCY", "maybe"),
        ("DATAMILL_CACHE_COMMIT_EVERY", "1.5"),
    ],
)
def test_a_bad_scale_out_setting_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        RunSettings.from_env({name: value})
