"""Seed datasets through the official Dataframer SDK: every type, files as paths, tuples and bare bytes,
ZIPs, listing, reading, deleting, and downloads fetched from their signed links."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import dataframer
from conftest import RunningServer


def body_of(exc: dataframer.APIStatusError) -> dict[str, Any]:
    assert isinstance(exc.body, dict), exc.body
    return exc.body


def csv_bytes(rows: int) -> bytes:
    return ("question,answer\n" + "".join(f"q{i},a{i}\n" for i in range(rows))).encode()


def tenant_id(server: RunningServer, endpoint: tuple[str, str]) -> str:
    tenant = server.context.tenants.authenticate(endpoint[1])
    assert tenant is not None
    return tenant.id


def test_single_file_from_a_path(client: dataframer.Dataframer, tmp_path: Path) -> None:
    path = tmp_path / "support.csv"
    path.write_bytes(csv_bytes(3))
    made = client.dataframer.seed_datasets.create_with_files(
        name="support", dataset_type="SINGLE_FILE", files=[path], description="three rows"
    )
    assert made.dataset_type == "SINGLE_FILE"
    assert (made.name, made.description) == ("support", "three rows")
    assert (made.file_count, made.folder_count, made.sample_count) == (1, 0, 3)
    assert made.created_by_email.endswith("@datamill.local")
    assert made.created_at is not None
    [file] = made.files
    assert (file.path, file.file_type, file.size_bytes) == ("support.csv", "text/csv", path.stat().st_size)
    assert file.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("name", "content", "file_type", "rows"),
    [
        ("rows.json", json.dumps([{"q": 1}, {"q": 2}]).encode(), "application/json", 2),
        ("rows.jsonl", b'{"q": 1}\n{"q": 2}\n{"q": 3}\n{"q": 4}\n', "application/jsonl", 4),
    ],
)
def test_single_file_from_a_tuple(
    client: dataframer.Dataframer, name: str, content: bytes, file_type: str, rows: int
) -> None:
    made = client.dataframer.seed_datasets.create_with_files(
        name=name, dataset_type="SINGLE_FILE", files=[(name, content, "application/octet-stream")]
    )
    assert made.sample_count == rows
    assert made.files[0].file_type == file_type


def test_single_file_from_bare_bytes_is_sniffed(client: dataframer.Dataframer) -> None:
    made = client.dataframer.seed_datasets.create_with_files(
        name="bare", dataset_type="SINGLE_FILE", files=[b'[{"a": 1}, {"a": 2}, {"a": 3}]']
    )
    assert made.files[0].path == "upload.json"
    assert made.sample_count == 3


def test_multi_file_from_paths_and_bare_bytes(client: dataframer.Dataframer, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("first seed")
    (tmp_path / "b.txt").write_text("second seed")
    made = client.dataframer.seed_datasets.create_with_files(
        name="texts", dataset_type="MULTI_FILE", files=[tmp_path / "a.txt", tmp_path / "b.txt"]
    )
    assert (made.file_count, made.folder_count, made.sample_count) == (2, 0, None)
    assert [f.path for f in made.files] == ["a.txt", "b.txt"]
    bare = client.dataframer.seed_datasets.create_with_files(
        name="bare-texts", dataset_type="MULTI_FILE", files=[b"one", b"two", b"three"]
    )
    assert [f.path for f in bare.files] == ["upload.txt", "upload-2.txt", "upload-3.txt"]
    assert {f.file_type for f in bare.files} == {"text/plain"}


def test_multi_folder_keeps_order_and_folders(client: dataframer.Dataframer) -> None:
    made = client.dataframer.seed_datasets.create_with_files(
        name="folders",
        dataset_type="MULTI_FOLDER",
        files=[("x.md", b"# x", "text/markdown"), ("y.md", b"# y", "text/markdown"), ("z.md", b"# z")],
        folder_names=["doc1", "doc2", "doc1"],
    )
    assert (made.file_count, made.folder_count) == (3, 2)
    assert [f.path for f in made.files] == ["doc1/x.md", "doc2/y.md", "doc1/z.md"]
    assert {f.file_type for f in made.files} == {"text/markdown"}


def test_list_retrieve_delete(df_server: RunningServer, client: dataframer.Dataframer) -> None:
    seeds = client.dataframer.seed_datasets
    first = seeds.create_with_files(name="first", dataset_type="SINGLE_FILE", files=[("a.csv", csv_bytes(2))])
    second = seeds.create_with_files(name="second", dataset_type="MULTI_FILE", files=[b"a", b"b"])
    listed = seeds.list()
    assert [d.id for d in listed] == [second.id, first.id]
    assert listed[0].file_count == 2
    assert "files" not in listed[0].model_dump(exclude_unset=True)
    assert "sample_count" not in listed[0].model_dump(exclude_unset=True)
    got = seeds.retrieve(first.id)
    assert got.model_dump() == first.model_dump()
    blob = got.files[0].id
    link = seeds.files.download(blob, dataset_id=first.id).download_url
    assert seeds.delete(first.id) is None
    gone = httpx.get(link)
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_found"
    assert [d.id for d in seeds.list()] == [second.id]
    with pytest.raises(dataframer.NotFoundError) as caught:
        seeds.retrieve(first.id)
    assert body_of(caught.value)["code"] == "not_found"
    with pytest.raises(dataframer.NotFoundError):
        seeds.files.download(blob, dataset_id=first.id)
    with pytest.raises(dataframer.NotFoundError):
        seeds.delete(first.id)


def test_download_url_serves_the_exact_bytes(client: dataframer.Dataframer) -> None:
    content = csv_bytes(5)
    made = client.dataframer.seed_datasets.create_with_files(
        name="dl", dataset_type="SINGLE_FILE", files=[("data é.csv", content)]
    )
    link = client.dataframer.seed_datasets.files.download(made.files[0].id, dataset_id=made.id)
    assert (link.filename, link.content_type) == ("data é.csv", "text/csv")
    answer = httpx.get(link.download_url)
    assert answer.status_code == 200
    assert answer.content == content
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''data%20%C3%A9.csv" in answer.headers["content-disposition"]


def test_altered_or_expired_links_are_refused(
    df_server: RunningServer, client: dataframer.Dataframer
) -> None:
    import datetime as dt

    from datamill.server.downloads_signed import sign_download, verify_download
    from datamill.server.signing import LinkSigner, load_or_create_secret
    from datamill.services.generation.common import DownloadTarget

    made = client.dataframer.seed_datasets.create_with_files(
        name="links", dataset_type="MULTI_FILE", files=[b"secret one", b"secret two"]
    )
    link = client.dataframer.seed_datasets.files.download(made.files[0].id, dataset_id=made.id).download_url
    payload, _, signature = link.rpartition("/")[2].rpartition(".")
    base = link.rpartition("/")[0]
    for bad in (f"{payload}.{'0' * len(signature)}", f"{payload[:-2]}xx.{signature}", payload):
        answer = httpx.get(f"{base}/{bad}")
        assert answer.status_code == 403
        assert answer.json()["code"] == "invalid_link"
    settings = df_server.settings
    signer = LinkSigner(settings.signing_secret or load_or_create_secret(settings.secret_path))
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    target = verify_download(signer, link.rpartition("/")[2])
    expired = httpx.get(
        f"{base}/{sign_download(signer, DownloadTarget(target.blob_key, 'x.txt', 'text/plain'), past)}"
    )
    assert expired.status_code == 403
    assert expired.json()["code"] == "link_expired"
    assert httpx.get(link).content == b"secret one"


def test_another_tenants_dataset_is_not_found(
    df_server: RunningServer, client: dataframer.Dataframer
) -> None:
    made = client.dataframer.seed_datasets.create_with_files(
        name="mine", dataset_type="MULTI_FILE", files=[b"a", b"b"]
    )
    with dataframer.Dataframer(
        base_url=df_server.base_url, api_key=df_server.new_key(), max_retries=0
    ) as other:
        for call in (
            lambda: other.dataframer.seed_datasets.retrieve(made.id),
            lambda: other.dataframer.seed_datasets.delete(made.id),
            lambda: other.dataframer.seed_datasets.files.download(made.files[0].id, dataset_id=made.id),
        ):
            with pytest.raises(dataframer.NotFoundError):
                call()
        assert other.dataframer.seed_datasets.list() == []
        same_name = other.dataframer.seed_datasets.create_with_files(
            name="mine", dataset_type="MULTI_FILE", files=[b"a", b"b"]
        )
    assert same_name.id != made.id
    assert client.dataframer.seed_datasets.retrieve(made.id).name == "mine"


def test_delete_is_refused_while_a_spec_uses_the_dataset(
    df_server: RunningServer, df_endpoint: tuple[str, str], client: dataframer.Dataframer
) -> None:
    from datamill.store import utcnow
    from datamill.store.generation_models import Spec

    made = client.dataframer.seed_datasets.create_with_files(
        name="used", dataset_type="MULTI_FILE", files=[b"a", b"b"]
    )
    now = utcnow()
    spec = Spec(
        id=f"spec_{made.id}",
        tenant_id=tenant_id(df_server, df_endpoint),
        name="support-spec",
        description=None,
        dataset_id=made.id,
        dataset_type="MULTI_FILE",
        generation_objectives=None,
        runtime_params={},
        job_id=None,
        created_by_email="x@datamill.local",
        created_at=now,
        updated_at=now,
    )
    with df_server.context.store.session() as session:
        session.add(spec)
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.seed_datasets.delete(made.id)
    assert body_of(caught.value)["code"] == "in_use"
    assert "support-spec" in body_of(caught.value)["error"]
    assert client.dataframer.seed_datasets.retrieve(made.id).file_count == 2
    with df_server.context.store.session() as session:
        session.delete(session.get(Spec, spec.id))
    client.dataframer.seed_datasets.delete(made.id)
    assert client.dataframer.seed_datasets.list() == []
