"""Documents as datasets through the official SDK: pdf, docx, pptx, html and zip uploads become rows of text
(one per pdf page or pptx slide, one per docx or html document), and broken, encrypted or oversized ones
fail their dataset with a message that says why. The files are made here with the writers of each format."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adaption
import docx
import httpx
import pptx
import pytest
from pypdf import PdfWriter
from reportlab.pdfgen import canvas
from runs_helpers import runs_server, wait_done
from server_helpers import wait_for

from conftest import RunningServer


def make_pdf(pages: list[str]) -> bytes:
    """A PDF whose pages hold these texts (an empty string: a page with no text)."""
    out = io.BytesIO()
    pdf = canvas.Canvas(out)
    for text in pages:
        if text:
            pdf.drawString(72, 720, text)
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, text in enumerate(row):
                grid.cell(r, c).text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_pptx(slides: list[tuple[str, str]], notes: str = "") -> bytes:
    deck = pptx.Presentation()
    for title, body in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


HTML = (
    b"<html><head><title>Help</title><style>p{color:red}</style></head><body><h1>Returns</h1>"
    b"<p>Send it back within <b>30 days</b>.</p><script>track()</script></body></html>"
)


def make_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with runs_server(tmp_path_factory.mktemp("documents")) as running:
        yield running


def upload_document(client: adaption.Adaption, name: str, data: bytes, **source: Any) -> Any:
    """Create, PUT and complete one document upload (the SDK's upload_file takes tabular files only)."""
    created = client.datasets.create(source={"name": name, **source})  # type: ignore[typeddict-item]
    assert created.upload_instructions is not None
    httpx.put(created.upload_instructions.url, content=data).raise_for_status()
    client.datasets.upload.complete_by_id(
        created.dataset_id, file_size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest()
    )
    return wait_for(client, created.dataset_id)


def _rows(client: adaption.Adaption, dataset_id: str) -> list[dict[str, Any]]:
    mapping: Any = {"prompt": "text"}
    client.datasets.adapt(dataset_id, column_mapping=mapping, job_specification={"max_rows": 100})
    assert wait_done(client, dataset_id).status == "succeeded"
    text = client.datasets.download(dataset_id, file_format="jsonl").text()
    return [json.loads(line) for line in text.splitlines()]


def _read(client: adaption.Adaption, name: str, data: bytes) -> tuple[Any, list[tuple[Any, ...]]]:
    status = upload_document(client, name, data)
    assert (status.status, status.error_data) == ("awaiting_input", None)
    rows = _rows(client, status.dataset_id)
    return status, sorted((r["source"], r["page"], r["original_prompt"]) for r in rows)


def test_a_pdf_is_a_row_per_page_with_text(srv: RunningServer) -> None:
    client = srv.client()
    data = make_pdf(["Amber products carry a two year warranty.", "", "Onyx devices reset in ten seconds."])
    status, rows = _read(client, "manual.pdf", data)
    assert client.datasets.get(status.dataset_id).row_count == 2  # the empty page is left out
    assert rows == [
        ("manual.pdf", 1, "Amber products carry a two year warranty."),
        ("manual.pdf", 3, "Onyx devices reset in ten seconds."),
    ]


def test_docx_pptx_and_html_documents(srv: RunningServer) -> None:
    client = srv.client()
    _, rows = _read(
        client, "policy.docx", make_docx(["Refunds", "Refunds take five days."], [["plan", "Pro"]])
    )
    assert rows == [("policy.docx", None, "Refunds\nRefunds take five days.\n\nplan | Pro")]
    deck = make_pptx([("Pricing", "Pro costs 9 euros"), ("Support", "Mail us")], notes="Say hello")
    _, rows = _read(client, "deck.pptx", deck)
    assert rows == [
        ("deck.pptx", 1, "Pricing\nPro costs 9 euros\n\nNotes: Say hello"),
        ("deck.pptx", 2, "Support\nMail us\n\nNotes: Say hello"),
    ]
    _, rows = _read(client, "help.html", HTML)
    assert rows == [("help.html", None, "Returns\n\nSend it back within 30 days.")]


def test_a_zip_of_documents_reads_each_member_by_its_type(srv: RunningServer) -> None:
    members = {
        "kb/manual.pdf": make_pdf(["Page one.", "Page two."]),
        "kb/policy.docx": make_docx(["Policy text."]),
        "notes.md": b"# Notes\nRemember the milk.",
        "__MACOSX/kb/._manual.pdf": b"resource fork",
        "logo.png": b"\x89PNG not a document",
    }
    _, rows = _read(srv.client(), "kb.zip", make_zip(members))
    assert rows == [
        ("kb/manual.pdf", 1, "Page one."),
        ("kb/manual.pdf", 2, "Page two."),
        ("kb/policy.docx", None, "Policy text."),
        ("notes.md", None, "# Notes\nRemember the milk."),
    ]


def test_a_batch_of_documents_is_one_dataset(srv: RunningServer) -> None:
    client = srv.client()
    parts = {"a.pdf": make_pdf(["Alpha page."]), "b.docx": make_docx(["Beta document."])}
    files: Any = [
        {"file_name": n, "file_format": n.rsplit(".", 1)[1], "file_size_bytes": len(d)}
        for n, d in parts.items()
    ]
    started = client.datasets.upload.initiate_batch(name="docs", files=files)
    for slot, data in zip(started.uploads, parts.values(), strict=True):
        httpx.put(slot.upload_url, content=data).raise_for_status()
    done: Any = [{**f, "s3_key": u.s3_key} for f, u in zip(files, started.uploads, strict=True)]
    client.datasets.upload.complete_batch(dataset_id=started.dataset_id, files=done)
    assert wait_for(client, started.dataset_id).status == "awaiting_input"
    texts = sorted(r["original_prompt"] for r in _rows(client, started.dataset_id))
    assert texts == ["Alpha page.", "Beta document."]


def _encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(make_pdf(["Secret."])))
    writer.encrypt("hunter2")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _encrypted_member_zip() -> bytes:
    data = bytearray(make_zip({"secret.txt": b"hidden"}))
    # Set the "encrypted" flag bit in the central directory entry, as a password-protected archive has.
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x1
    return bytes(data)


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("locked.pdf", _encrypted_pdf(), "encrypted with a password"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj garbage", "not a readable PDF"),
        ("broken.docx", b"PK\x03\x04 not really a zip", "not a readable docx file"),
        ("locked.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "encrypted with a password"),
        ("scan.pdf", make_pdf(["", ""]), "holds no text"),
        ("empty.zip", make_zip({"a.png": b"x"}), "holds no document"),
        ("locked.zip", _encrypted_member_zip(), "secret.txt is encrypted"),
        ("bomb.zip", make_zip({"big.txt": b"0" * (20 << 20)}), "decompression bomb"),
        ("junk.zip", b"not a zip at all", "not a valid zip archive"),
    ],
)
def test_a_broken_encrypted_or_hostile_document_fails_its_dataset_clearly(
    srv: RunningServer, name: str, data: bytes, says: str
) -> None:
    client = srv.client()
    status = upload_document(client, name, data)
    assert status.status == "failed"
    assert status.error_data is not None
    assert status.error_data.code == "E0100", status.error_data.message
    assert says in (status.error_data.message or "")
    with pytest.raises(adaption.APIStatusError) as caught:
        client.datasets.adapt(status.dataset_id, column_mapping={"prompt": "text"})
    assert 400 <= caught.value.status_code < 500


def test_a_raw_document_upload_maps_the_text_column(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    status = upload_document(
        client,
        "faq.html",
        HTML,
        processing_mode="raw",
        column_mapping={"prompt": "source", "completion": "text"},
    )
    assert status.status == "succeeded"
    assert client.datasets.get(status.dataset_id).row_count == 1
