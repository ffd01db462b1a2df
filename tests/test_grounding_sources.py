"""Grounding documents at an fsspec URL: mirrored locally, refreshed only when the source changes."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest

from datamill.core.errors import ConfigError
from datamill.services.adaptation.grounding_sources import is_remote, local_documents, mirror
from datamill.text.fulltext import LocalFullTextIndex


@pytest.fixture
def source() -> str:
    url = f"memory://kb-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{url}/billing/refunds.md", b"Refunds take five business days to reach your card.")
    fs.pipe(f"{url}/reset.txt", b"To reset your password, open Settings and choose Security.")
    fs.pipe(f"{url}/.hidden/secret.md", b"never indexed")
    return url


def test_a_remote_folder_is_mirrored_and_searched(source: str, tmp_path: Path) -> None:
    (docs,) = local_documents([source], tmp_path)
    folder = Path(docs)
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "billing/refunds.md",
        "reset.txt",
    ]
    index = LocalFullTextIndex.build([folder], tmp_path / "index.sqlite3")
    found = index.search_sync("how long do refunds take", 3)
    assert found[0].source.endswith("billing/refunds.md")


def test_the_mirror_is_kept_until_the_source_changes(source: str, tmp_path: Path) -> None:
    first = mirror(source, tmp_path)
    stamp = (first / "reset.txt").stat().st_mtime_ns
    assert mirror(source, tmp_path) == first
    assert (first / "reset.txt").stat().st_mtime_ns == stamp  # not copied again: the index stays valid
    fsspec.filesystem("memory").pipe(f"{source}/new.md", b"A new page about invoices.")
    again = mirror(source, tmp_path)
    assert (again / "new.md").read_text() == "A new page about invoices."


def test_local_paths_pass_through_and_empty_sources_are_refused(tmp_path: Path) -> None:
    assert [is_remote(e) for e in ("/srv/kb", "file:///srv/kb", "s3://bucket/kb")] == [False, False, True]
    assert local_documents(["/srv/kb"], tmp_path) == ("/srv/kb",)
    with pytest.raises(ConfigError, match="no file found there"):
        mirror(f"memory://empty-{uuid.uuid4().hex}", tmp_path)


def test_pdf_and_docx_documents_are_searched_by_page(tmp_path: Path) -> None:
    import docx
    from reportlab.pdfgen import canvas

    kb = tmp_path / "kb"
    kb.mkdir()
    pdf = canvas.Canvas(str(kb / "manual.pdf"))
    for text in ("The blender has three speeds.", "Descale the kettle every month with vinegar."):
        pdf.drawString(72, 720, text)
        pdf.showPage()
    pdf.save()
    document = docx.Document()
    document.add_paragraph("Refunds reach your card within five business days.")
    document.save(str(kb / "policy.docx"))
    index = LocalFullTextIndex.build([kb], tmp_path / "index.sqlite3")
    assert index.search_sync("how often should I descale the kettle", 1)[0].source == "kb/manual.pdf#page=2"
    assert index.search_sync("when do refunds reach my card", 1)[0].source == "kb/policy.docx"
