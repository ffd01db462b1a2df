"""Search backends: the fake, the local FTS5 index (documents, chunking, ranking, query safety, rebuilds), and
the HTTP adapter on a loopback server."""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
from pathlib import Path

import pytest

from datamill.core.errors import ConfigError, DataFormatError, PermanentModelError, TransientError
from datamill.llm.retry import RetryPolicy
from datamill.text.fetch_policy import FetchPolicy
from datamill.text.fulltext import (
    CHUNK_CHARS,
    OVERLAP_CHARS,
    LocalFullTextIndex,
    build_query,
    chunk_text,
    find_documents,
    html_text,
    require_fts5,
)
from datamill.text.search import UNSCORED, FakeSearch, HttpSearch, Passage
from http_stubs import StubServer

RESET = """# Resetting your password

To reset your password, open Settings, choose Security, then click "Forgot password". A reset link is
emailed to you within five minutes.

If the reset link expires, request a new one from the sign-in page.
"""
BILLING = """Invoices are issued on the first day of each month; download them as PDF from the Billing page.
Refunds are processed within ten business days. Your password is never shown on an invoice.
"""
SHIPPING_HTML = """<html><head><title>Shipping</title><style>p { color: red }</style>
<script>var secret = "zebra";</script></head>
<body><h1>Shipping policy</h1>
<p>We ship to 40 countries. Express shipping takes 2&ndash;3 days.</p></body></html>
"""


def _docs(root: Path) -> Path:
    docs = root / "kb"
    (docs / "web").mkdir(parents=True)
    (docs / "reset.md").write_text(RESET)
    (docs / "billing.txt").write_text(BILLING)
    (docs / "web" / "shipping.html").write_text(SHIPPING_HTML)
    (docs / "faq.jsonl").write_text(
        '{"text": "The warranty covers hardware defects for two years.", "url": "https://example.test/w"}\n'
        "\n"
        '{"text": ""}\n'
        '{"text": "Gift cards never expire."}\n'
    )
    (docs / "notes.csv").write_text("id,text\n1,Support hours are nine to five on weekdays.\n2,\n")
    (docs / "manual.odt").write_bytes(b"PK not read")
    (docs / ".hidden.md").write_text("zebra zebra zebra")
    return docs


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return _docs(tmp_path)


@pytest.fixture
def index(docs: Path, tmp_path: Path):
    built = LocalFullTextIndex.build(docs, tmp_path / "index" / "kb.sqlite", source_column="url")
    yield built
    built.close()


# --- FakeSearch -----------------------------------------------------------------------------------------


async def test_fake_search_returns_best_first_cut_to_k_and_records_queries():
    fake = FakeSearch([Passage("a", "low", 0.1), Passage("b", "high", 2.0), Passage("c", "mid", 1.0)])
    found = await fake.search("anything", 2)
    assert [p.source for p in found] == ["b", "c"]
    assert fake.queries == ["anything"]
    assert await fake.search("again", 0) == []


async def test_fake_search_responder_scripts_each_query():
    fake = FakeSearch(responder=lambda query, k: [Passage(query, f"about {query}", 1.0)] * 5)
    found = await fake.search("tea", 3)
    assert [p.text for p in found] == ["about tea"] * 3


# --- documents and chunking --------------------------------------------------------------------------------


def test_find_documents_lists_supported_files_with_source_names(docs: Path):
    names = [name for _, name in find_documents(docs)]
    assert names == ["kb/billing.txt", "kb/faq.jsonl", "kb/notes.csv", "kb/reset.md", "kb/web/shipping.html"]
    single = docs / "reset.md"
    assert [name for _, name in find_documents([single])] == [single.as_posix()]


def test_find_documents_errors_name_the_problem(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        find_documents(tmp_path / "missing")
    (tmp_path / "only.odt").write_bytes(b"PK")
    with pytest.raises(ConfigError, match=r"no documents found.*\.md"):
        find_documents(tmp_path)
    with pytest.raises(ConfigError, match="unsupported document type"):
        find_documents([tmp_path / "only.odt"])


def test_html_text_keeps_visible_text_only():
    text = html_text(SHIPPING_HTML)
    assert "Express shipping takes 2–3 days." in text
    assert "zebra" not in text
    assert "color" not in text
    assert "<" not in text
    assert "Shipping policy\n\n" in text


def _sentences(count: int) -> str:
    return " ".join(f"Sentence number {i} says something about topic {i}." for i in range(count))


def _shared(before: str, after: str) -> str:
    """The longest start of ``after`` that ``before`` ends with."""
    return next((after[:n] for n in range(len(after), 0, -1) if before.endswith(after[:n])), "")


def test_short_text_is_one_chunk_with_paragraphs_kept():
    assert chunk_text("First   line\nstill first.\n\nSecond paragraph.") == [
        "First line still first.\n\nSecond paragraph."
    ]
    assert chunk_text(" \n\n ") == []


def test_chunks_fit_the_size_and_overlap_at_sentence_boundaries():
    text = _sentences(60)
    chunks = chunk_text(text)
    assert len(chunks) > 3
    assert all(len(c) <= CHUNK_CHARS for c in chunks)
    for before, after in itertools.pairwise(chunks):
        shared = _shared(before, after)
        assert 0 < len(shared) <= OVERLAP_CHARS  # the next passage starts with the end of this one
        assert shared.startswith("Sentence number ")
        assert shared.endswith(".")
    words = text.split()
    covered = set(" ".join(chunks).split())
    assert set(words) <= covered


def test_chunks_prefer_paragraph_boundaries():
    para_a = "Alpha " * 60  # 360 characters
    para_b = "Bravo " * 60
    para_c = "Charlie " * 60
    chunks = chunk_text(f"{para_a}\n\n{para_b}\n\n{para_c}")
    assert chunks[0] == f"{para_a.strip()}\n\n{para_b.strip()}"
    assert "Charlie" not in chunks[0]
    assert chunks[-1].endswith("Charlie")


def test_unbroken_text_longer_than_a_chunk_is_cut():
    chunks = chunk_text("x" * 2000)
    assert "".join(chunks) == "x" * 2000
    assert all(len(c) <= CHUNK_CHARS for c in chunks)


# --- the local index ---------------------------------------------------------------------------------------


def test_build_indexes_every_supported_type(index: LocalFullTextIndex):
    # reset.md, billing.txt, shipping.html, 2 jsonl records with text, 1 csv row with text
    assert index.documents == 6
    assert index.passages == 6
    assert index.rebuilt
    sources = {p.source for p in index.search_sync("warranty gift cards support hours shipping", 10)}
    assert sources == {"https://example.test/w", "kb/faq.jsonl#4", "kb/notes.csv#1", "kb/web/shipping.html"}


async def test_ranking_puts_the_relevant_passage_first(index: LocalFullTextIndex):
    found = await index.search("How do I reset my password if the link expired?", 3)
    assert found[0].source == "kb/reset.md"
    assert "Forgot password" in found[0].text
    # Weaker matches follow: billing mentions "password" once; "expired" meets "expire" by Porter stemming.
    assert {p.source for p in found[1:]} == {"kb/billing.txt", "kb/faq.jsonl#4"}
    assert found[0].score > found[1].score >= found[2].score > 0


async def test_no_shared_word_finds_nothing(index: LocalFullTextIndex):
    assert await index.search("quantum chromodynamics", 3) == []
    assert await index.search("what is it?", 3) == []  # stopwords only: nothing to search for
    assert await index.search("password", 0) == []


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced quote',
        'he said "reset" and "',
        "pass* -word OR (reset",
        "reset AND NOT password",
        "NEAR(reset password, 2)",
        "text: reset",
        "source:kb",
        "^reset",
        "'; DROP TABLE passages; --",
        "reset_password_now",
        "{reset password}",
        "___ *** ---",
        "",
        "   ",
        "\x00\x01 reset",
        "Réinitialiser le mot de passe ç ß 密码",
        "reset " * 5000,
    ],
)
async def test_hostile_queries_do_not_raise(index: LocalFullTextIndex, query: str):
    found = await index.search(query, 3)
    assert len(found) <= 3
    if "reset" in query.lower():
        assert found
        assert found[0].source == "kb/reset.md"


def test_build_query_quotes_words_and_drops_stopwords():
    assert build_query('How do I "reset" my pass-word (OR *)?') == '"reset" OR "pass" OR "word"'
    assert build_query("Reset RESET reset") == '"reset"'
    assert build_query("the of and") == ""
    assert build_query("Café ünïcode") == '"café" OR "ünïcode"'


def test_build_query_caps_the_number_of_words():
    query = build_query(" ".join(f"word{i}" for i in range(100)), max_terms=5)
    assert query == " OR ".join(f'"word{i}"' for i in range(5))


async def test_concurrent_searches_share_the_index(index: LocalFullTextIndex):
    results = await asyncio.gather(*(index.search("reset password", 2) for _ in range(20)))
    assert all(r == results[0] for r in results)


def test_rebuilds_only_when_the_documents_change(docs: Path, tmp_path: Path):
    db = tmp_path / "kb.sqlite"
    first = LocalFullTextIndex.build(docs, db)
    first.close()
    again = LocalFullTextIndex.build(docs, db)
    assert not again.rebuilt
    assert again.fingerprint == first.fingerprint
    again.close()

    (docs / "billing.txt").write_text(BILLING + "\nLate fees are waived for the first month.\n")
    changed = LocalFullTextIndex.build(docs, db)
    assert changed.rebuilt
    assert changed.fingerprint != first.fingerprint
    assert changed.search_sync("late fees waived", 1)[0].source == "kb/billing.txt"
    changed.close()

    stat = (docs / "reset.md").stat()
    os.utime(docs / "reset.md", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    touched = LocalFullTextIndex.build(docs, db)
    assert touched.rebuilt
    touched.close()

    (docs / "new.md").write_text("Pets are welcome in the office on Fridays.")
    added = LocalFullTextIndex.build(docs, db)
    assert added.rebuilt
    assert added.documents == 7
    added.close()

    (docs / "new.md").unlink()
    removed = LocalFullTextIndex.build(docs, db)
    assert removed.rebuilt
    assert removed.search_sync("pets office fridays", 3) == []
    removed.close()

    other_column = LocalFullTextIndex.build(docs, db, source_column="url")
    assert other_column.rebuilt
    other_column.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb", "kb.sqlite"]  # no temporary files left


def test_open_reads_an_index_built_earlier(index: LocalFullTextIndex):
    reopened = LocalFullTextIndex.open(index.path)
    try:
        assert not reopened.rebuilt
        assert reopened.passages == index.passages
        assert reopened.search_sync("reset password", 1) == index.search_sync("reset password", 1)
    finally:
        reopened.close()


def test_open_and_build_refuse_files_that_are_not_an_index(docs: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        LocalFullTextIndex.open(tmp_path / "missing.sqlite")
    text_file = tmp_path / "precious.sqlite"
    text_file.write_text("user data, not a database")
    with pytest.raises(ConfigError, match="not a datamill grounding index"):
        LocalFullTextIndex.open(text_file)
    with pytest.raises(ConfigError, match="not a datamill grounding index"):
        LocalFullTextIndex.build(docs, text_file)
    assert text_file.read_text() == "user data, not a database"
    other_db = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other_db)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(ConfigError, match="not a datamill grounding index"):
        LocalFullTextIndex.build(docs, other_db)


def test_documents_without_text_are_a_config_error(tmp_path: Path):
    (tmp_path / "empty.md").write_text("  \n\n ")
    with pytest.raises(ConfigError, match="no text found"):
        LocalFullTextIndex.build(tmp_path, tmp_path / "out" / "idx.sqlite")
    assert not (tmp_path / "out" / "idx.sqlite").exists()


def test_unreadable_records_are_data_format_errors(tmp_path: Path):
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"text": broken\n')
    with pytest.raises(DataFormatError, match="line 2"):
        LocalFullTextIndex.build(tmp_path / "bad.jsonl", tmp_path / "a.sqlite")
    (tmp_path / "bad.jsonl").write_text('["a list"]\n')
    with pytest.raises(DataFormatError, match="JSON object"):
        LocalFullTextIndex.build(tmp_path / "bad.jsonl", tmp_path / "a.sqlite")
    (tmp_path / "bad.csv").write_text("id,body\n1,hello\n")
    with pytest.raises(DataFormatError, match="'text' column"):
        LocalFullTextIndex.build(tmp_path / "bad.csv", tmp_path / "b.sqlite")
    built = LocalFullTextIndex.build(tmp_path / "bad.csv", tmp_path / "b.sqlite", text_column="body")
    assert built.search_sync("hello", 1)[0].source.endswith("bad.csv#1")
    built.close()


async def test_abuild_builds_in_a_thread(docs: Path, tmp_path: Path):
    built = await LocalFullTextIndex.abuild(docs, tmp_path / "kb.sqlite")
    assert built.rebuilt
    assert (await built.search("refunds", 1))[0].source == "kb/billing.txt"
    built.close()


class _NoFts5Connection:
    """Answers like a SQLite built without FTS5."""

    def execute(self, sql: str) -> None:
        raise sqlite3.OperationalError("no such module: fts5")


def test_missing_fts5_is_a_clear_config_error():
    with pytest.raises(ConfigError, match="needs SQLite with FTS5"):
        require_fts5(_NoFts5Connection())
    require_fts5()  # this interpreter's SQLite has it


# --- HttpSearch on a loopback server ------------------------------------------------------------------------

_FAST = RetryPolicy(base_delay=0.0, max_delay=0.0, retry_after_scale=0.0)


_LOOPBACK = FetchPolicy.with_allowed(["127.0.0.1"])  # the fetcher refuses loopback unless allowed


@pytest.fixture
async def server():
    stub = StubServer()
    await stub.start()
    yield stub
    await stub.close()


async def test_http_search_posts_the_query_and_reads_results(server: StubServer):
    results = [
        {"source": "https://a.test", "text": "first", "score": 3.5},
        {"source": "https://b.test", "text": "second"},
        {"source": "https://c.test", "text": "third", "score": 1},
    ]
    server.reply(200, {"results": results})
    search = HttpSearch(
        f"{server.base_url}/search", policy=_LOOPBACK, api_key="sekret", headers={"X-Team": "kb"}, retry=_FAST
    )
    try:
        found = await search.search('reset "password"', 2)
    finally:
        await search.aclose()
    assert found == [Passage("https://a.test", "first", 3.5), Passage("https://b.test", "second", UNSCORED)]
    assert server.last.path == "/search"
    assert server.last.body == {"query": 'reset "password"', "k": 2}
    assert server.last.headers["authorization"] == "Bearer sekret"
    assert server.last.headers["x-team"] == "kb"


async def test_http_search_retries_transient_failures(server: StubServer):
    server.reply(503, {"error": "busy"})
    server.reply(429, {"error": "slow down"}, {"Retry-After": "1"})
    server.reply(200, {"results": [{"source": "s", "text": "t", "score": 1.0}]})
    search = HttpSearch(server.base_url, policy=_LOOPBACK, retry=_FAST)
    try:
        assert [p.text for p in await search.search("q", 3)] == ["t"]
    finally:
        await search.aclose()
    assert len(server.requests) == 3


async def test_http_search_gives_up_after_the_retry_budget(server: StubServer):
    server.reply(502, {"error": "bad gateway"})
    search = HttpSearch(
        server.base_url, policy=_LOOPBACK, retry=RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0)
    )
    try:
        with pytest.raises(TransientError, match="gave up after 2 attempts"):
            await search.search("q", 3)
    finally:
        await search.aclose()
    assert len(server.requests) == 2


async def test_http_search_auth_failure_is_permanent(server: StubServer):
    server.reply(401, {"error": "bad key"})
    search = HttpSearch(server.base_url, policy=_LOOPBACK, retry=_FAST)
    try:
        with pytest.raises(PermanentModelError) as caught:
            await search.search("q", 3)
    finally:
        await search.aclose()
    assert caught.value.status == 401
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"hits": []},
        [1, 2],
        {"results": [{"source": "s"}]},
        {"results": [{"source": "s", "text": "t", "score": "high"}]},
        {"results": ["text"]},
    ],
)
async def test_http_search_wrong_shape_is_a_config_error(server: StubServer, body):
    server.reply(200, body)
    search = HttpSearch(server.base_url, policy=_LOOPBACK, retry=_FAST)
    try:
        with pytest.raises(ConfigError, match="search API"):
            await search.search("q", 3)
    finally:
        await search.aclose()


async def test_http_search_at_an_internal_address_needs_the_allow_list(server: StubServer):
    search = HttpSearch(server.base_url, retry=_FAST, policy=FetchPolicy())
    try:
        with pytest.raises(ConfigError, match="loopback address; allow it with DATAMILL_FETCH_ALLOW"):
            await search.search("q", 3)
    finally:
        await search.aclose()
    assert server.requests == []
