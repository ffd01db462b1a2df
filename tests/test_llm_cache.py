import asyncio
import dataclasses
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from datamill.llm.cache import InMemoryResponseCache, SqliteResponseCache, cache_key
from datamill.llm.types import ChatRequest, Message, Route

ROUTE = Route(name="a/m", provider="openai", model="m", base_url="http://127.0.0.1:1/v1")
REQUEST = ChatRequest(
    (Message("system", "s"), Message("user", "u")),
    max_tokens=10,
    json_schema={"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}},
)


def test_the_key_is_stable_and_ignores_the_public_name_and_prices() -> None:
    renamed = dataclasses.replace(ROUTE, name="b/alias", input_price=9.0, max_concurrency=3)

    assert cache_key(ROUTE, REQUEST) == cache_key(ROUTE, REQUEST)
    assert cache_key(renamed, REQUEST) == cache_key(ROUTE, REQUEST)
    assert len(cache_key(ROUTE, REQUEST)) == 64


def test_schema_key_order_does_not_matter() -> None:
    reordered = dataclasses.replace(
        REQUEST,
        json_schema={"properties": {"b": {"type": "integer"}, "a": {"type": "string"}}, "type": "object"},
    )

    assert cache_key(ROUTE, reordered) == cache_key(ROUTE, REQUEST)


@pytest.mark.parametrize(
    ("route_change", "request_change"),
    [
        ({"provider": "fake"}, {}),
        ({"model": "m2"}, {}),
        ({"base_url": "http://127.0.0.1:2/v1"}, {}),
        ({"thinking": True}, {}),
        ({}, {"messages": (Message("system", "s"), Message("user", "u2"))}),
        ({}, {"messages": (Message("user", "s"), Message("user", "u"))}),
        ({}, {"max_tokens": 11}),
        ({}, {"temperature": 0.1}),
        ({}, {"json_schema": None}),
        ({}, {"thinking_budget": 100}),
        ({}, {"stop": ("x",)}),
        ({}, {"seed": 1}),
    ],
)
def test_every_answer_changing_field_changes_the_key(
    route_change: dict[str, Any], request_change: dict[str, Any]
) -> None:
    route = dataclasses.replace(ROUTE, **route_change)
    request = dataclasses.replace(REQUEST, **request_change)

    assert cache_key(route, request) != cache_key(ROUTE, REQUEST)


def test_grammar_bounds_change_the_key_only_where_the_local_grammar_honours_them() -> None:
    bounded = dataclasses.replace(REQUEST, grammar_max_chars={"a": 5})
    local = dataclasses.replace(ROUTE, provider="local", model="bundled:smollm2", base_url=None)

    assert cache_key(local, bounded) != cache_key(local, REQUEST)
    wider = dataclasses.replace(bounded, grammar_max_chars={"a": 6})
    assert cache_key(local, wider) != cache_key(local, bounded)
    # A hosted provider never sees the bound: its replies, and their cache entries, are the same.
    assert cache_key(ROUTE, bounded) == cache_key(ROUTE, REQUEST)


def test_in_memory_cache_round_trips() -> None:
    cache = InMemoryResponseCache()
    cache.put("k", {"text": "t"})

    assert cache.get("k") == {"text": "t"}
    assert cache.get("other") is None
    assert len(cache) == 1
    cache.close()


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])


def test_sqlite_cache_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = SqliteResponseCache(path)
    cache.put("k", {"text": "t", "usage": [1, 2, 3], "data": {"a": [1, None]}})
    assert cache.get("k") == {"text": "t", "usage": [1, 2, 3], "data": {"a": [1, None]}}
    cache.close()
    cache.close()  # closing twice is harmless

    reopened = SqliteResponseCache(path)
    assert reopened.get("k") == {"text": "t", "usage": [1, 2, 3], "data": {"a": [1, None]}}
    assert reopened.get("missing") is None
    reopened.close()


def test_sqlite_cache_batches_commits(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = SqliteResponseCache(path, commit_every=3, max_delay_s=3600)

    cache.put("a", {"n": 1})
    cache.put("b", {"n": 2})
    assert _rows(path) == 0  # not written yet, but readable through the cache
    assert cache.get("a") == {"n": 1}
    assert len(cache) == 2

    cache.put("c", {"n": 3})
    assert _rows(path) == 3
    cache.put("d", {"n": 4})
    cache.flush()
    assert _rows(path) == 4
    cache.close()


def test_a_crash_loses_at_most_the_unwritten_puts(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    crashed = SqliteResponseCache(path, commit_every=2, max_delay_s=3600)
    for key in "abc":
        crashed.put(key, {"k": key})
    # The process "dies": no close, no flush. Another process opens the file.

    survivor = SqliteResponseCache(path)
    assert survivor.get("a") == {"k": "a"}
    assert survivor.get("b") == {"k": "b"}
    assert survivor.get("c") is None
    survivor.close()
    crashed._pending.clear()  # drop the lost put, then release the file handle
    crashed.close()


def test_old_pending_puts_are_written_at_the_next_put(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = SqliteResponseCache(path, commit_every=1000, max_delay_s=0.0)

    cache.put("a", {})
    cache.put("b", {})

    assert _rows(path) >= 1
    cache.close()


def test_sqlite_cache_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    SqliteResponseCache(path).close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_closed_cache_refuses_use(tmp_path: Path) -> None:
    cache = SqliteResponseCache(tmp_path / "c.sqlite")
    cache.close()

    with pytest.raises(RuntimeError, match="closed"):
        cache.get("k")


def test_a_file_with_the_old_without_rowid_table_is_converted_with_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE responses (key TEXT PRIMARY KEY, value BLOB NOT NULL, created_at REAL NOT NULL) "
            "WITHOUT ROWID"
        )
        conn.execute("INSERT INTO responses VALUES ('old', ?, 1.0)", (b'{"text": "kept"}',))
    conn.close()

    cache = SqliteResponseCache(path)
    assert cache.get("old") == {"text": "kept"}
    cache.put("new", {"text": "n"})
    cache.close()
    SqliteResponseCache(path).close()  # a second open finds nothing to convert

    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table'")]
        keys = sorted(r[0] for r in conn.execute("SELECT key FROM responses"))
    conn.close()
    assert len(tables) == 1
    assert "WITHOUT ROWID" not in tables[0].upper()
    assert keys == [b"new", b"old"]  # keys that are not digests are stored as their UTF-8


def test_a_file_with_hex_keys_is_converted_to_binary_keys_with_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    digest = "ab" * 32
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE responses (key TEXT PRIMARY KEY, value BLOB NOT NULL, created_at REAL NOT NULL)"
        )
        conn.execute("INSERT INTO responses VALUES (?, ?, 1.0)", (digest, b'{"text": "hex"}'))
        conn.execute("INSERT INTO responses VALUES ('plain', ?, 1.0)", (b'{"text": "plain"}',))
    conn.close()

    cache = SqliteResponseCache(path)
    assert cache.get(digest) == {"text": "hex"}
    assert cache.get("plain") == {"text": "plain"}
    cache.close()
    with sqlite3.connect(path) as conn:
        stored = sorted(conn.execute("SELECT typeof(key), length(key) FROM responses"))
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()
    assert stored == [("blob", 5), ("blob", 32)]
    assert version == 1


def test_digest_keys_are_stored_as_their_32_bytes(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    key = cache_key(ROUTE, ChatRequest((Message("user", "hi"),)))
    cache = SqliteResponseCache(path)
    cache.put(key, {"text": "hello"})
    cache.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT key FROM responses").fetchall() == [(bytes.fromhex(key),)]
    conn.close()
    assert SqliteResponseCache(path).get(key) == {"text": "hello"}


def _open_put_close(path: str, index: int, barrier: Any) -> None:
    barrier.wait()
    cache = SqliteResponseCache(path, commit_every=1)
    cache.put(f"k{index}", {"i": index})
    cache.close()


def test_processes_opening_a_new_file_at_once_all_get_in(tmp_path: Path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    path = str(tmp_path / "shared.sqlite")
    barrier = context.Barrier(6)
    workers = [context.Process(target=_open_put_close, args=(path, i, barrier)) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0] * 6
    cache = SqliteResponseCache(path)
    assert [cache.get(f"k{i}") for i in range(6)] == [{"i": i} for i in range(6)]
    cache.close()


def _written_by_another_process(path: Path, key: str, value: dict[str, Any]) -> None:
    """``key`` put and written by another connection to the file (as another worker would)."""
    other = SqliteResponseCache(path)
    other.put(key, value)
    other.close()


async def test_look_ups_in_a_loop_share_a_read_transaction_that_ends_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    reader = SqliteResponseCache(path, read_window_s=0.05)
    assert reader.get("k") is None
    assert reader._conn is not None
    assert reader._conn.in_transaction  # the look-up left a read open
    _written_by_another_process(path, "k", {"text": "written meanwhile"})  # WAL: the read does not block it
    await asyncio.sleep(0.2)  # the window's timer ends the read; the next look-up sees the new entry
    assert not reader._conn.in_transaction
    assert reader.get("k") == {"text": "written meanwhile"}
    reader.close()


async def test_a_flush_ends_the_read_so_the_write_and_later_look_ups_see_everything(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = SqliteResponseCache(path, read_window_s=60.0)
    assert cache.get("theirs") is None
    _written_by_another_process(path, "theirs", {"text": "b"})
    cache.put("mine", {"text": "a"})
    assert cache.get("mine") == {"text": "a"}  # an unwritten put is answered from memory
    cache.flush()
    assert cache.get("theirs") == {"text": "b"}
    cache.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM responses").fetchone() == (2,)


def test_a_read_left_open_by_a_finished_loop_is_not_reused_past_its_window(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = SqliteResponseCache(path, read_window_s=0.05)

    async def look_up() -> dict[str, Any] | None:
        return cache.get("k")

    assert asyncio.run(look_up()) is None  # the loop closes before the window's timer runs
    _written_by_another_process(path, "k", {"text": "later"})
    time.sleep(0.1)
    assert asyncio.run(look_up()) == {"text": "later"}
    assert cache.get("k") == {"text": "later"}  # outside a loop: a transaction per look-up
    cache.close()
