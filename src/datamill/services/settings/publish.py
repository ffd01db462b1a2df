"""Settings of publishing: where the server may publish datasets to.

| variable               | meaning                                                     | default             |
|------------------------|-------------------------------------------------------------|---------------------|
| DATAMILL_HF_TOKEN      | the Hugging Face token publishing to the Hub uses           | (none: Hub refused) |
| DATAMILL_HF_ENDPOINT   | the Hub's URL                                               | the public Hub      |
| DATAMILL_PUBLISH_ROOTS | directories or fsspec URLs path targets may be under (comma-separated) | (none)   |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from datamill.services.settings.environment import read_environment

DEFAULT_HF_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class PublishSettings:
    """Where publishing may go: the Hub endpoint and token, and the roots of path targets."""

    hf_endpoint: str = DEFAULT_HF_ENDPOINT
    hf_token: str | None = None
    roots: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PublishSettings:
        """Read the variables of the module docstring from `env` (default: the process environment)."""
        return cls.from_values(read_environment(env)[0])

    @classmethod
    def from_values(cls, env: Mapping[str, str]) -> PublishSettings:
        """The settings the declared variables `env` describe."""
        roots = tuple(r.strip() for r in env.get("DATAMILL_PUBLISH_ROOTS", "").split(",") if r.strip())
        return cls(
            hf_endpoint=(env.get("DATAMILL_HF_ENDPOINT") or DEFAULT_HF_ENDPOINT).rstrip("/"),
            hf_token=env.get("DATAMILL_HF_TOKEN") or None,
            roots=roots,
        )
