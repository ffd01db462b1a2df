"""The parts of anonymization below the server: overlaps, placeholders, file formats, the model detector.

The rule detector itself is measured by ``bench/pii_detection.py`` and driven end to end by the
Dataframer tests; here each rule the docs state is checked on its own.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterator

import openpyxl
import pytest

from datamill.core.errors import DataFormatError
from datamill.llm.gateway import Gateway
from datamill.llm.routing import Routing
from datamill.llm.simulator import ProviderSimulator, WireRequest, serve_in_thread
from datamill.pipelines.anonymize import AnonymizeOptions, Anonymizer
from datamill.pipelines.anonymize_files import split_file
from datamill.pipelines.anonymize_llm import LlmCounters, LlmDetector
from datamill.text.pii.columns import column_label
from datamill.text.pii.resolve import disjoint, resolve
from datamill.text.pii.surrogates import Surrogates
from datamill.text.pii.types import Entity


def test_the_same_entity_gets_the_same_placeholder_and_numbers_follow_reading_order() -> None:
    text = "Ana Ruiz met Tom Baker; later ana  ruiz wrote to Tom Baker."
    spans = [
        Entity(m.start(), m.end(), "person", 0.9) for m in re.finditer(r"(?i)ana\s+ruiz|tom baker", text)
    ]
    assert (
        Surrogates().apply(text, spans) == "<PERSON_1> met <PERSON_2>; later <PERSON_1> wrote to <PERSON_2>."
    )


def test_mask_config_templates_number_with_n_or_not_at_all() -> None:
    surrogates = Surrogates({"person": "[name {n}]", "email": "<EMAIL>"})
    assert surrogates.placeholder("person", "Ana") == "[name 1]"
    assert surrogates.placeholder("person", "Tom") == "[name 2]"
    assert (
        surrogates.placeholder("email", "a@x.org") == surrogates.placeholder("email", "b@y.org") == "<EMAIL>"
    )
    assert Surrogates().placeholder("phone_number", "+1 415-555-0132") == Surrogates().placeholder(
        "phone_number", "+1 (415) 555 0132"
    )


def test_a_pattern_span_beats_a_name_inside_it() -> None:
    address = Entity(0, 30, "street_address", 0.6)
    namesake = Entity(9, 22, "person", 0.85)
    assert disjoint([namesake, address]) == [address]


def test_overlapping_spans_are_merged_so_nothing_flagged_leaks() -> None:
    card = Entity(10, 29, "credit_card", 0.8)
    tax_id_inside = Entity(10, 21, "national_id", 1.0)
    assert disjoint([tax_id_inside, card]) == [Entity(10, 29, "credit_card", 1.0)]
    short, long = Entity(0, 3, "person", 0.7), Entity(0, 8, "person", 0.9)
    assert disjoint([short, long]) == [Entity(0, 8, "person", 0.9)]


def test_birth_words_make_a_date_of_birth_and_the_threshold_drops_weak_spans() -> None:
    text = "Meeting on 03/04/2024. Maria, geboren am 12.03.1985, came."
    dates = [Entity(11, 21, "date", 0.6), Entity(41, 51, "date", 0.6)]
    assert [e.label for e in resolve(text, dates, {"date", "date_of_birth"}, 0.35)] == [
        "date",
        "date_of_birth",
    ]
    assert [text[e.start : e.end] for e in resolve(text, dates, {"date_of_birth"}, 0.35)] == ["12.03.1985"]
    assert resolve(text, dates, {"date"}, 0.7) == []


def test_first_and_last_names_are_cut_from_a_name_without_its_title() -> None:
    text = "Dr. Ana María Ruiz"
    parts = resolve(text, [Entity(0, len(text), "person", 0.9)], {"first_name", "last_name"}, 0.35)
    assert [(e.label, text[e.start : e.end]) for e in parts] == [("first_name", "Ana"), ("last_name", "Ruiz")]


def test_column_names_name_types_and_fall_back_to_what_was_asked() -> None:
    assert column_label("/3/Email", {"email"}) == "email"
    assert column_label("Sheet1/date of birth", {"date"}) == "date"
    assert column_label("nachname", {"person"}) == "person"
    assert column_label("product_name", {"person"}) is None


def _minimal_pdf(text: str) -> bytes:
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>",
        b"<</Length %d>>stream\n" % len(stream) + stream + b"\nendstream",
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer <</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def _xlsx() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["name", "amount", "total"])
    sheet.append(["Ana Ruiz", 3, "=B2*2"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("path", "data", "texts", "samples"),
    [
        ("a.md", b"# Ana\n", ["# Ana\n"], 1),
        ("a.csv", b'name,note\r\n"Ruiz, Ana","said ""hi""\nthere"\r\n', ["Ruiz, Ana", 'said "hi"\nthere'], 1),
        ("a.jsonl", b'{"a": {"b": ["Ana", 7, true]}}\n\n{"c": null}\n', ["Ana", "7"], 2),
        ("a.json", b'[{"n": "Ana"}, {"n": "Tom", "k": 1.5}]', ["Ana", "Tom", "1.5"], 2),
        ("a.xlsx", _xlsx(), ["Ana Ruiz", "3"], 1),
        ("a.pdf", _minimal_pdf("Write to ana@example.com"), ["Write to ana@example.com"], 1),
    ],
)
def test_each_format_reads_its_texts_and_writes_them_back_in_place(
    path: str, data: bytes, texts: list[str], samples: int
) -> None:
    template = split_file(path, data)
    assert [f.text.strip() if path.endswith(".pdf") else f.text for f in template.fields] == texts
    assert template.samples == samples
    unchanged = template.write([f.text for f in template.fields])
    if path.endswith((".md", ".csv")):
        assert unchanged == data  # nothing masked: the same bytes
    changed = split_file(template.path, template.write([f"<X{i}>" for i in range(len(texts))]))
    assert [f.text.strip() for f in changed.fields] == [f"<X{i}>" for i in range(len(texts))]


def test_structure_is_kept_around_the_masked_values() -> None:
    template = split_file("a.json", b'{"n": "Ana", "age": 41, "ok": true, "k": {"Ana": "x"}}')
    written = json.loads(template.write(["<P>", "41", "x"]))
    assert written == {"n": "<P>", "age": 41, "ok": True, "k": {"Ana": "x"}}  # keys and unmasked values stay
    book = openpyxl.load_workbook(io.BytesIO(split_file("a.xlsx", _xlsx()).write(["<P>", "3"])))
    sheet = book.active
    assert sheet is not None
    assert [c.value for c in sheet[2]] == ["<P>", 3, "=B2*2"]  # the formula is kept
    assert split_file("a.pdf", _minimal_pdf("x")).path == "a.pdf.txt"


@pytest.mark.parametrize(
    ("path", "data"), [("a.json", b"{nope"), ("a.jsonl", b"{}\n{nope\n"), ("a.xlsx", b"PK")]
)
def test_unreadable_files_are_refused_with_the_reason(path: str, data: bytes) -> None:
    with pytest.raises(DataFormatError) as caught:
        split_file(path, data)
    assert caught.value.path == path


# ---- the model detector ---------------------------------------------------------------------------------

_PASSAGE = re.compile(r'<passage number="(\d+)">\n(.*?)\n</passage>', re.DOTALL)


def _names_emails(request: WireRequest) -> str:
    entities = []
    for number, text in _PASSAGE.findall(request.turns[-1][1]):
        for email in re.findall(r"[\w.]+@[\w.]+\w", text):
            entities.append({"passage": int(number), "text": email, "label": "email", "score": 0.9})
    entities.append({"passage": 1, "text": "not in the text", "label": "email", "score": 0.9})
    entities.append({"passage": 99, "text": "ana@example.com", "label": "email", "score": 0.9})
    return json.dumps({"entities": entities})


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with serve_in_thread(seed=1, responder=_names_emails) as simulator:
        yield simulator


def test_the_model_detector_locates_named_text_and_drops_the_rest(sim: ProviderSimulator) -> None:
    async def main() -> tuple[list[list[Entity]], LlmCounters, int]:
        async with Gateway(Routing.from_dict(sim.routes())) as gateway:
            counters = LlmCounters()
            detector = LlmDetector(gateway.model("sim-openai/m"), ["email"], max_chars=300, counters=counters)
            long = "x " * 140 + "write to tom@example.org " + "y " * 200  # crosses a window edge
            found = await detector.detect(["Mail ana@example.com or ana@example.com.", long, "  "])
            return found, counters, len(sim.log)

    found, counters, calls = asyncio.run(main())
    short, long, blank = found
    assert [(e.start, e.end) for e in short] == [(5, 20), (24, 39)]  # every occurrence, offsets from the text
    # cut by the first window's edge, whole in the second: merged, the whole address is masked
    assert disjoint(long) == [Entity(289, 304, "email", 0.9)]
    assert blank == []
    assert counters.dropped == 2 * calls  # the invented text and the passage that does not exist, per request


def test_an_anonymizer_masks_a_value_wherever_the_file_repeats_it() -> None:
    class Columns:  # no detector finds anything: only the column names and the repetition do
        def detect_many(self, texts: list[str], labels: object) -> list[list[Entity]]:
            return [[] for _ in texts]

    anonymizer = Anonymizer(AnonymizeOptions(labels=("person",)), rules=Columns())  # type: ignore[arg-type]
    data = b"name,note\nAna Ruiz,Ana Ruiz called twice\n"
    done = asyncio.run(anonymizer.file("a.csv", data))
    assert done.data == b"name,note\n<PERSON_1>,<PERSON_1> called twice\n"
    assert [(e["field"], e["start"], e["end"]) for e in done.entities] == [("name", 0, 8), ("note", 0, 8)]


def test_a_name_after_a_courtesy_title_is_found_in_any_of_the_languages() -> None:
    from datamill.text.pii.rules import rule_detector

    detector = rule_detector()
    for text, name in [
        ("Sehr geehrte Frau Müller, vielen Dank.", "Müller"),
        ("Nous avons reçu la lettre de Mme Leroy hier.", "Leroy"),
        ("Llamó el Sr. Ezequiel Reguera por la mañana.", "Ezequiel Reguera"),
    ]:
        found = resolve(text, detector.detect(text, ["person"]), {"person"}, 0.35)
        masked = Surrogates().apply(text, found)
        assert name not in masked, masked
