"""The document readers' limits, checked on files made here: pages, members and sizes."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from reportlab.pdfgen import canvas

from datamill.core.errors import DataFormatError
from datamill.dataio import _document_text, _documents, open_dataset, read_all


def _pdf(path: Path, pages: int) -> Path:
    pdf = canvas.Canvas(str(path))
    for number in range(pages):
        pdf.drawString(72, 720, f"Page {number + 1} text.")
        pdf.showPage()
    pdf.save()
    return path


def test_a_pdf_over_the_page_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _pdf(tmp_path / "long.pdf", 3)
    assert read_all(path)["page"].to_pylist() == [1, 2, 3]
    monkeypatch.setattr(_document_text, "MAX_PAGES", 2)
    with pytest.raises(DataFormatError, match="it has 3 pages, more than the limit of 2"):
        open_dataset(path)


def test_a_zip_over_the_member_or_size_limits_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for number in range(3):
            archive.writestr(f"doc{number}.txt", f"Document {number}.")
    assert read_all(path, batch_size=2)["source"].to_pylist() == ["doc0.txt", "doc1.txt", "doc2.txt"]
    monkeypatch.setattr(_documents, "MAX_MEMBERS", 2)
    with pytest.raises(DataFormatError, match="holds 3 documents, more than 2"):
        open_dataset(path)
    monkeypatch.setattr(_documents, "MAX_MEMBERS", 10)
    monkeypatch.setattr(_documents, "MAX_DOCUMENT_BYTES", 5)
    with pytest.raises(DataFormatError, match=r"doc0\.txt is larger than 5 bytes"):
        open_dataset(path)


def test_a_zip_inside_a_zip_is_not_opened(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("inner.txt", "Inside.")
    path = tmp_path / "outer.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("inner.zip", inner.getvalue())
        archive.writestr("top.html", "<p>Top level.</p>")
    assert read_all(path).to_pylist() == [{"source": "top.html", "page": None, "text": "Top level."}]


def test_documents_are_told_from_their_extension(tmp_path: Path) -> None:
    page = tmp_path / "page.htm"
    page.write_text("<h1>Title</h1><ul><li>one</li><li>two</li></ul>", encoding="utf-8")
    with open_dataset(page) as reader:
        assert (reader.format, reader.columns) == ("html", ["source", "page", "text"])
        assert [row["text"] for batch in reader for row in batch.to_pylist()] == ["Title\n\none\n\ntwo"]


def test_an_html_page_over_its_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "big.html"
    page.write_text("<p>" + "word " * 50 + "</p>", encoding="utf-8")
    monkeypatch.setattr(_documents, "MAX_HTML_BYTES", 100)
    with pytest.raises(DataFormatError, match="a html document may be at most 100 bytes"):
        open_dataset(page)
    assert read_all(_pdf(tmp_path / "small.pdf", 1))["page"].to_pylist() == [1]  # other formats keep theirs
