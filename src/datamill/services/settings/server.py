"""Settings of the server, read from the environment once, in a factory (never at import).

| variable                  | meaning                                  | default                        |
|---------------------------|------------------------------------------|--------------------------------|
| DATAMILL_HOME             | data directory (see `settings.entry`)    | ~/.local/share/datamill        |
| DATAMILL_DATABASE_URL     | metadata database (SQLAlchemy URL)       | sqlite:///DATA_DIR/datamill.db |
| DATAMILL_BLOB_URL         | blob storage: a directory or fsspec URL  | DATA_DIR/blobs                 |
| DATAMILL_PUBLIC_URL       | base URL put in upload links             | the host a request came to     |
| DATAMILL_MAX_UPLOAD_BYTES | largest upload (``5GiB``, ``100MB``)     | 5GiB                           |
| DATAMILL_UPLOAD_URL_TTL   | seconds an upload link stays valid       | 3600                           |
| DATAMILL_SIGNING_SECRET   | key that signs upload links              | generated into the data dir    |
| DATAMILL_DEFAULT_CREDITS  | credit balance of a new tenant           | 1000                           |
| DATAMILL_RATE_LIMIT_PER_MINUTE | API requests a key may make a minute (0: no limit) | 1200              |
| DATAMILL_RATE_LIMIT_BURST | requests a key may make at once          | the per-minute limit           |
| DATAMILL_RATE_LIMIT_ANON_PER_MINUTE | failed authentications an address may make a minute (0: none) | 300 |
| DATAMILL_RATE_LIMIT_STORAGE | where limits count: auto, database, memory or a limits URI | auto |
| DATAMILL_GOOGLE_SHEETS_URL | where Google Sheets exports are fetched | https://docs.google.com        |
| DATAMILL_INGEST_MAX_COLUMNS | most columns an uploaded file may have | 2000                           |
| DATAMILL_INGEST_TIMEOUT_S | seconds reading one uploaded file may take | 300                          |
| DATAMILL_INGEST_MAX_MEMORY_MB | memory reading one workbook or document may take | 1024               |
| DATAMILL_INGEST_WORKERS   | files read (and URLs imported) at once   | 2                              |
| DATAMILL_INGEST_TENANT_WORKERS | most of those one tenant's files take at once | all but one (at least 1) |
| DATAMILL_HEADER_TIMEOUT_S | seconds a request's headers may take     | 10                             |
| DATAMILL_BODY_TIMEOUT_S   | seconds a request body may stall         | 60                             |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from datamill.core.errors import ConfigError
from datamill.services.settings.entry import Settings
from datamill.services.settings.environment import read_environment

GIB = 1 << 30
DEFAULT_MAX_UPLOAD_BYTES = 5 * GIB
DEFAULT_CREDITS = 1000.0
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9}
_UNITS |= {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "tb": 10**12, "t": 10**12}


def parse_size(text: str, name: str = "size") -> int:
    """Bytes from ``"1048576"``, ``"5GiB"``, ``"100 MB"``; raises ConfigError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ConfigError(f"{name}: cannot read {text!r} as a size (examples: 1048576, 100MB, 5GiB)")
    return int(float(match.group(1)) * _UNITS[unit])


def _positive(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number < 0:
        raise ConfigError(f"{name}: must be a non-negative number, got {value!r}")
    return number


def _count(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"{name}: must be a whole number of at least 1, got {value!r}")
    return number


@dataclass(frozen=True)
class ServerSettings:
    """Everything `create_app` needs; build it with `from_env` or `for_data_dir`."""

    data_dir: Path
    database_url: str
    blob_url: str
    public_url: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    upload_url_ttl_s: int = 3600
    signing_secret: str | None = None
    default_credits: float = DEFAULT_CREDITS
    ingest_workers: int = 2
    ingest_tenant_workers: int | None = None
    rate_limit_per_minute: int = 1200
    rate_limit_burst: int | None = None
    rate_limit_anon_per_minute: int = 300
    rate_limit_storage: str = "auto"
    google_sheets_url: str = "https://docs.google.com"
    ingest_max_columns: int = 2000
    ingest_timeout_s: float = 300.0
    ingest_max_memory_mb: int = 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0

    @classmethod
    def for_data_dir(cls, data_dir: str | Path, **overrides: Any) -> ServerSettings:
        """The embedded defaults under one data directory (SQLite file, local blobs), with overrides."""
        root = Path(data_dir).expanduser()
        base = cls(
            data_dir=root, database_url=f"sqlite:///{root / 'datamill.db'}", blob_url=str(root / "blobs")
        )
        return replace(base, **overrides)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, data_dir: Path | None = None
    ) -> ServerSettings:
        """Read the ``DATAMILL_*`` variables (module docstring); `data_dir` overrides DATAMILL_HOME."""
        values, environ = read_environment(env)
        return cls.from_values(values, environ, data_dir=data_dir)

    @classmethod
    def from_values(
        cls, env: Mapping[str, str], environ: Mapping[str, str], *, data_dir: Path | None = None
    ) -> ServerSettings:
        """The settings the declared variables `env` describe; `data_dir` overrides DATAMILL_HOME."""
        settings = cls.for_data_dir(data_dir or Settings.from_values(env, environ).data_dir)
        overrides: dict[str, Any] = {}
        if url := env.get("DATAMILL_DATABASE_URL"):
            overrides["database_url"] = url
        if url := env.get("DATAMILL_BLOB_URL"):
            overrides["blob_url"] = url
        if url := env.get("DATAMILL_PUBLIC_URL"):
            overrides["public_url"] = url.rstrip("/")
        if size := env.get("DATAMILL_MAX_UPLOAD_BYTES"):
            overrides["max_upload_bytes"] = parse_size(size, "DATAMILL_MAX_UPLOAD_BYTES")
        if ttl := env.get("DATAMILL_UPLOAD_URL_TTL"):
            overrides["upload_url_ttl_s"] = max(1, int(_positive(ttl, "DATAMILL_UPLOAD_URL_TTL")))
        if secret := env.get("DATAMILL_SIGNING_SECRET"):
            overrides["signing_secret"] = secret
        if credits := env.get("DATAMILL_DEFAULT_CREDITS"):
            overrides["default_credits"] = _positive(credits, "DATAMILL_DEFAULT_CREDITS")
        if limit := env.get("DATAMILL_RATE_LIMIT_PER_MINUTE"):
            overrides["rate_limit_per_minute"] = int(_positive(limit, "DATAMILL_RATE_LIMIT_PER_MINUTE"))
        if burst := env.get("DATAMILL_RATE_LIMIT_BURST"):
            overrides["rate_limit_burst"] = max(1, int(_positive(burst, "DATAMILL_RATE_LIMIT_BURST")))
        if anon := env.get("DATAMILL_RATE_LIMIT_ANON_PER_MINUTE"):
            overrides["rate_limit_anon_per_minute"] = int(
                _positive(anon, "DATAMILL_RATE_LIMIT_ANON_PER_MINUTE")
            )
        if storage := env.get("DATAMILL_RATE_LIMIT_STORAGE"):
            overrides["rate_limit_storage"] = storage.strip()
        if url := env.get("DATAMILL_GOOGLE_SHEETS_URL"):
            if not url.strip().startswith(("http://", "https://")):
                raise ConfigError(f"DATAMILL_GOOGLE_SHEETS_URL: must be an http(s) URL, got {url!r}")
            overrides["google_sheets_url"] = url.strip().rstrip("/")
        if columns := env.get("DATAMILL_INGEST_MAX_COLUMNS"):
            overrides["ingest_max_columns"] = max(1, int(_positive(columns, "DATAMILL_INGEST_MAX_COLUMNS")))
        if memory := env.get("DATAMILL_INGEST_MAX_MEMORY_MB"):
            overrides["ingest_max_memory_mb"] = max(
                1, int(_positive(memory, "DATAMILL_INGEST_MAX_MEMORY_MB"))
            )
        for name in ("ingest_workers", "ingest_tenant_workers"):
            variable = f"DATAMILL_{name.upper()}"
            if count := env.get(variable):
                overrides[name] = _count(count, variable)
        for name in ("header_timeout_s", "body_timeout_s", "ingest_timeout_s"):
            variable = f"DATAMILL_{name.upper()}"
            if seconds := env.get(variable):
                overrides[name] = _positive(seconds, variable) or 1.0
        return replace(settings, **overrides)

    @property
    def secret_path(self) -> Path:
        """Where the generated upload-signing secret is kept when none is configured."""
        return self.data_dir / "upload-signing.key"
