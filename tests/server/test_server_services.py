"""Units under the server: settings from the environment, upload-link signing, tenants and keys, profiles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from datamill.core.errors import ConfigError, ValidationError
from datamill.server.signing import (
    DOWNLOAD,
    UPLOAD,
    LinkExpired,
    LinkInvalid,
    LinkSigner,
    load_or_create_secret,
)
from datamill.services.datasets.profile import detect_image_columns
from datamill.services.settings.server import ServerSettings, parse_size
from datamill.services.tenants import TenantService
from datamill.store import Store


def test_settings_default_to_the_data_dir(tmp_path: Path) -> None:
    settings = ServerSettings.from_env({"DATAMILL_HOME": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'datamill.db'}"
    assert settings.blob_url == str(tmp_path / "blobs")
    assert settings.max_upload_bytes == 5 << 30
    assert settings.public_url is None


def test_settings_read_every_variable(tmp_path: Path) -> None:
    settings = ServerSettings.from_env(
        {
            "DATAMILL_DATABASE_URL": "postgresql+psycopg://db/datamill",
            "DATAMILL_BLOB_URL": "s3://bucket/prefix",
            "DATAMILL_PUBLIC_URL": "https://data.example.com/",
            "DATAMILL_MAX_UPLOAD_BYTES": "100MB",
            "DATAMILL_UPLOAD_URL_TTL": "60",
            "DATAMILL_SIGNING_SECRET": "s3cret",
            "DATAMILL_DEFAULT_CREDITS": "25",
        },
        data_dir=tmp_path,
    )
    assert settings.data_dir == tmp_path
    assert settings.database_url == "postgresql+psycopg://db/datamill"
    assert settings.blob_url == "s3://bucket/prefix"
    assert settings.public_url == "https://data.example.com"
    assert (settings.max_upload_bytes, settings.upload_url_ttl_s) == (100_000_000, 60)
    assert (settings.signing_secret, settings.default_credits) == ("s3cret", 25.0)


@pytest.mark.parametrize(
    ("text", "size"), [("1048576", 1 << 20), ("5GiB", 5 << 30), ("1.5 KiB", 1536), ("2kb", 2000)]
)
def test_sizes_are_read_with_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("env", [{"DATAMILL_MAX_UPLOAD_BYTES": "lots"}, {"DATAMILL_DEFAULT_CREDITS": "-1"}])
def test_bad_settings_are_config_errors(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        ServerSettings.from_env(env, data_dir=tmp_path)


def test_a_signed_link_verifies_until_it_expires() -> None:
    signer = LinkSigner("k" * 32)
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    token = signer.sign(UPLOAD, {"upload_id": "up_1"}, now + dt.timedelta(minutes=5))
    assert signer.verify(UPLOAD, token, now) == {"upload_id": "up_1"}
    with pytest.raises(LinkExpired):
        signer.verify(UPLOAD, token, now + dt.timedelta(minutes=6))
    with pytest.raises(LinkInvalid):  # a token made for uploads is not a download token
        signer.verify(DOWNLOAD, token, now)
    with pytest.raises(LinkInvalid):
        LinkSigner("o" * 32).verify(UPLOAD, token, now)
    with pytest.raises(LinkInvalid):
        signer.verify(UPLOAD, token[:-1] + ("A" if token[-1] != "A" else "B"), now)


@pytest.mark.parametrize("secret", ["", "short", "x" * 31])
def test_a_signer_refuses_a_secret_under_32_bytes(secret: str) -> None:
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        LinkSigner(secret)


def test_the_signing_secret_is_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "key"
    first = load_or_create_secret(path)
    assert len(first) == 64
    assert load_or_create_secret(path) == first
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["key"]  # no temporary file left beside it


@pytest.mark.parametrize("content", ["", "\n", "abc\n"])
def test_a_secret_file_left_empty_or_short_is_refused_not_used(tmp_path: Path, content: str) -> None:
    path = tmp_path / "key"
    path.write_text(content)
    with pytest.raises(ConfigError, match="shorter than 32 bytes"):
        load_or_create_secret(path)


@pytest.fixture
def tenants(tmp_path: Path) -> Iterator[TenantService]:
    store = Store.from_url(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    yield TenantService(store, default_credits=50)
    store.close()


def test_keys_authenticate_their_tenant_until_revoked(tenants: TenantService) -> None:
    issued = tenants.create_key("acme")
    assert issued.key.startswith("dm_")
    assert (issued.tenant.name, issued.tenant.credits) == ("acme", 50)
    second = tenants.create_key("acme")
    assert second.tenant.id == issued.tenant.id
    assert tenants.authenticate(issued.key) == issued.tenant
    assert tenants.authenticate(issued.key + "x") is None
    assert tenants.authenticate("not-a-key") is None
    assert tenants.revoke_key(issued.prefix) == 1
    assert tenants.authenticate(issued.key) is None
    assert tenants.authenticate(second.key) is not None


def test_the_initial_key_is_made_only_on_a_fresh_install(tenants: TenantService) -> None:
    first = tenants.ensure_initial_key()
    assert first is not None
    assert first.tenant.name == "default"
    assert tenants.ensure_initial_key() is None


def test_credits_are_set_for_new_tenants_and_added_later(tenants: TenantService) -> None:
    assert tenants.create_key("rich", credits=500).tenant.credits == 500
    with pytest.raises(ValidationError):
        tenants.create_key("rich", credits=1)
    assert tenants.add_credits("rich", 25.5).credits == 525.5
    with pytest.raises(ValidationError):
        tenants.add_credits("nobody", 1)
    assert [t.name for t in tenants.list_tenants()] == ["rich"]


def test_image_columns_are_told_by_their_values() -> None:
    batch = pa.RecordBatch.from_pylist(
        [
            {"a": f"https://x.example/{i}.jpg", "b": f"data:image/png;base64,AAA{i}", "c": f"s3://b/{i}.png",
             "d": f"just text {i}", "e": b"\x89PNG\r\n\x1a\n...", "f": {"bytes": None, "path": f"{i}.webp"}}
            for i in range(5)
        ]
    )  # fmt: skip
    assert detect_image_columns(batch) == {
        "a": "url",
        "b": "embedded_bytes",
        "c": "file_reference",
        "e": "embedded_bytes",
        "f": "file_reference",
    }
