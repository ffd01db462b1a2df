"""Seed datasets from ZIP archives through the SDK: how an archive is classified, and unsafe ones refused."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from pathlib import Path

import pytest

import dataframer

MB = 1024 * 1024


def make_zip(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def refused(client: dataframer.Dataframer, payload: bytes, name: str = "bad") -> str:
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.seed_datasets.create_from_zip(name=name, zip_file=("seeds.zip", payload))
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["details"][0]["field"] == "zip_file"
    assert client.dataframer.seed_datasets.list() == []
    return str(body["details"][0]["reason"])


def test_single_file_zip_from_a_path(client: dataframer.Dataframer, tmp_path: Path) -> None:
    path = tmp_path / "seeds.zip"
    path.write_bytes(make_zip({"data/rows.jsonl": b'{"a": 1}\n{"a": 2}\n', ".hidden.csv": b"x\n1\n2\n"}))
    made = client.dataframer.seed_datasets.create_from_zip(name="z1", zip_file=path, description="zipped")
    assert (made.dataset_type, made.sample_count, made.description) == ("SINGLE_FILE", 2, "zipped")
    assert [f.path for f in made.files] == ["rows.jsonl"]


def test_multi_file_zip_skips_what_is_not_a_seed(client: dataframer.Dataframer) -> None:
    payload = make_zip(
        {
            "seeds/": b"",
            "seeds/a.txt": b"alpha",
            "seeds/b.txt": b"beta",
            "seeds/.DS_Store": b"x",
            "__MACOSX/seeds/._a.txt": b"x",
            "seeds/tool.exe": b"MZ",
        }
    )
    made = client.dataframer.seed_datasets.create_from_zip(name="z2", zip_file=("s.zip", payload))
    assert (made.dataset_type, made.folder_count, made.sample_count) == ("MULTI_FILE", 0, None)
    assert [f.path for f in made.files] == ["a.txt", "b.txt"]


def test_multi_folder_zip_uses_top_level_folders_in_archive_order(client: dataframer.Dataframer) -> None:
    payload = make_zip(
        {"doc2/x.md": b"# x", "doc1/deep/y.md": b"# y", "doc1/z.md": b"# z", "readme.md": b"# top"}
    )
    made = client.dataframer.seed_datasets.create_from_zip(name="z3", zip_file=("s.zip", payload))
    assert (made.dataset_type, made.folder_count, made.file_count) == ("MULTI_FOLDER", 2, 4)
    assert [f.path for f in made.files] == ["doc2/x.md", "doc1/y.md", "doc1/z.md", "readme.md"]
    link = client.dataframer.seed_datasets.files.download(made.files[1].id, dataset_id=made.id)
    assert link.filename == "y.md"


def test_zip_files_follow_the_same_rules(client: dataframer.Dataframer) -> None:
    assert "multi-file dataset must have the same extension" in refused(
        client, make_zip({"a.txt": b"a", "b.md": b"b"})
    )
    assert "requires at least 2 rows" in refused(client, make_zip({"one.csv": b"h\n1\n"}))
    assert "SINGLE_FILE dataset only supports CSV, JSON, JSONL. Found: .txt" in refused(
        client, make_zip({"notes.txt": b"hello"})
    )
    assert "No valid files found in ZIP" in refused(client, make_zip({"a.exe": b"x", ".env": b"x"}))


def test_not_a_zip(client: dataframer.Dataframer) -> None:
    assert refused(client, b"this is not an archive") == "Uploaded file is not a valid ZIP file"
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.seed_datasets.create_from_zip(name="none", zip_file=b"")
    assert caught.value.body["details"][0]["field"] == "zip_file"


@pytest.mark.parametrize("member", ["../evil.txt", "a/../../evil.txt", "/etc/evil.txt", "a\\..\\evil.txt"])
def test_unsafe_paths(client: dataframer.Dataframer, member: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("ok.txt"), b"fine")
        archive.writestr(zipfile.ZipInfo(member), b"escape")
    assert refused(client, buffer.getvalue()) == "Invalid ZIP file: contains unsafe paths"


def test_symlinks(client: dataframer.Dataframer) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", b"fine")
        link = zipfile.ZipInfo("b.txt")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, b"/etc/passwd")
    assert refused(client, buffer.getvalue()) == "Invalid ZIP file: 'b.txt' is a symbolic link"


def test_zip_bomb_refused_from_its_directory(client: dataframer.Dataframer) -> None:
    big = make_zip({"a.txt": b"\0" * (51 * MB), "b.txt": b"b"})
    assert len(big) < MB
    assert "add up to 53477377 bytes uncompressed" in refused(client, big)
    dense = make_zip({"a.txt": b"\0" * (5 * MB), "b.txt": b"b"})
    assert "compressed more than 100:1" in refused(client, dense)


def _lie_about_size(payload: bytes, member: str, size: int) -> bytes:
    """Rewrite the uncompressed size `member` declares, in its local header and the central directory."""
    data = bytearray(payload)
    name = member.encode()
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        while at != -1:
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at : name_at + len(name)] == name:
                struct.pack_into("<I", data, at + offset, size)
            at = data.find(signature, at + 4)
    return bytes(data)


def test_member_lying_about_its_size(client: dataframer.Dataframer) -> None:
    payload = _lie_about_size(make_zip({"a.txt": b"x" * 200_000, "b.txt": b"b"}), "a.txt", 1000)
    reason = refused(client, payload)
    assert "a.txt" in reason
    assert "not a valid ZIP file" in reason


def test_too_many_files(client: dataframer.Dataframer) -> None:
    payload = make_zip({f"{i}.txt": b"x" for i in range(1001)}, compression=zipfile.ZIP_STORED)
    assert refused(client, payload) == "ZIP holds 1001 usable files; a dataset allows at most 1000"
