"""Response cache: a re-run pays only for calls whose request changed.

Keys come from `cache_key`: a sha256 over a canonical orjson encoding of everything that changes the answer
(the route's provider, provider model id, endpoint and thinking flag, and the request's messages and
parameters). The public model name is left out on purpose: two names routed to the same model share entries.

`SqliteResponseCache` keeps puts in memory and writes them in one transaction every ``commit_every`` puts,
when the oldest unwritten put is older than ``max_delay_s`` (checked at the next put), on `flush` and on
`close`. A put therefore costs a dict insert, and no write transaction stays open between batches, so several
worker processes can share one file (WAL mode). If a process dies, at worst its last unwritten puts are lost.

The table is an ordinary rowid table with a unique index on the key, not a ``WITHOUT ROWID`` table: keys
are random hashes and values are kilobytes, so a ``WITHOUT ROWID`` B-tree splits a random leaf page on nearly
every insert (measured: about 60 µs of CPU per lookup + insert and a file 3× the data), while a rowid table
appends the values and only touches the small index pages (about 15 µs). Keys are stored as the digest's 32
bytes rather than its 64 hex digits, which halves the index: a batch of puts rewrites fewer index pages and a
look-up reads fewer (`PRAGMA user_version` 1 marks such a file). A file made with an older layout (``WITHOUT
ROWID``, hex keys) is converted once, in one transaction, when it is opened.

Look-ups share read transactions. On its own every ``SELECT`` is a transaction: two file-lock calls and a
read of the WAL index, more than half the CPU of a miss (about 3.6 µs against 1.5 µs inside a transaction).
So a look-up made in an event loop opens a read transaction that later look-ups reuse for up to
``read_window_s`` (0.2 s); a timer on the loop ends it then, and `flush` and `close` end it first. A look-up
therefore sees what other processes wrote up to 0.2 s earlier (a reply they wrote within that window is asked
for again), and never its own puts late: those are answered from memory until they are written. Outside an
event loop each look-up is its own transaction, as before.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import orjson

from datamill.llm.types import ChatRequest, Route

_KEY_VERSION = "v1"
_CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS responses "
    "(key BLOB PRIMARY KEY, value BLOB NOT NULL, created_at REAL NOT NULL)"
)


class ResponseCache(Protocol):
    """Where the gateway keeps successful, validated replies. Values are plain JSON-able dicts."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def cache_key(route: Route, request: ChatRequest) -> str:
    """A stable hex digest of what determines a reply to ``request`` on ``route``."""
    payload = (
        _KEY_VERSION,
        route.provider,
        route.model,
        route.base_url,
        route.thinking,
        [(m.role, m.content, [i.digest() for i in m.images]) for m in request.messages],
        request.max_tokens,
        request.temperature,
        request.json_schema,
        request.thinking_budget,
        request.stop,
        request.seed,
        # Only the local model's grammar honours these bounds; other providers' replies do not depend on them.
        *([request.grammar_max_chars] if route.provider == "local" and request.grammar_max_chars else []),
    )
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


class InMemoryResponseCache:
    """A dict: for tests and one-off runs."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self._data.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._data[key] = value

    def close(self) -> None:
        """Nothing to release; entries stay readable."""

    def __len__(self) -> int:
        return len(self._data)


class SqliteResponseCache:
    """A persistent cache in one SQLite file (WAL, ``synchronous=NORMAL``) with batched commits.

    Use it from one event-loop thread per process; other processes may share the file.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        commit_every: int = 512,
        max_delay_s: float = 2.0,
        read_window_s: float = 0.2,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._commit_every = max(1, commit_every)
        self._max_delay_s = max_delay_s
        self._pending: dict[str, bytes] = {}
        self._oldest_pending = 0.0
        self._conn: sqlite3.Connection | None = _open(self.path)
        self._cursor: sqlite3.Cursor = self._conn.cursor()
        self._read_window_s = read_window_s
        self._reading: asyncio.TimerHandle | None = None
        self._read_until = 0.0

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self._pending.get(key)
        if raw is None:
            self._connection()
            if self._reading is not None and time.monotonic() > self._read_until:
                self._end_read()  # its timer did not run: the loop that set it is blocked or gone
            if self._reading is None and self._read_window_s > 0:
                self._begin_read()
            row = self._cursor.execute(
                "SELECT value FROM responses WHERE key = ?", (stored_key(key),)
            ).fetchone()
            if row is None:
                return None
            raw = row[0]
        value: dict[str, Any] = orjson.loads(raw)
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._connection()
        if not self._pending:
            self._oldest_pending = time.monotonic()
        self._pending[key] = orjson.dumps(value)
        if (
            len(self._pending) >= self._commit_every
            or time.monotonic() - self._oldest_pending > self._max_delay_s
        ):
            self.flush()

    def flush(self) -> None:
        """Write every pending put in one transaction."""
        if not self._pending or self._conn is None:
            return
        self._end_read()
        now = time.time()
        rows = sorted((stored_key(k), v, now) for k, v in self._pending.items())
        with _transaction(self._conn):
            self._conn.executemany(
                "INSERT OR REPLACE INTO responses (key, value, created_at) VALUES (?, ?, ?)", rows
            )
        self._pending.clear()

    def close(self) -> None:
        """Flush and close the file; closing twice is harmless."""
        if self._conn is None:
            return
        try:
            self._end_read()
            self.flush()
        finally:
            self._conn.close()
            self._conn = None

    def __len__(self) -> int:
        row = self._connection().execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(row[0]) + sum(1 for k in self._pending if not self._stored(k))

    def _stored(self, key: str) -> bool:
        return (
            self._connection().execute("SELECT 1 FROM responses WHERE key = ?", (stored_key(key),)).fetchone()
            is not None
        )

    def _begin_read(self) -> None:
        """Open a read transaction for the look-ups of the next ``read_window_s``, if in an event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        assert self._conn is not None
        self._conn.execute("BEGIN")
        self._reading = loop.call_later(self._read_window_s, self._end_read)
        self._read_until = time.monotonic() + self._read_window_s

    def _end_read(self) -> None:
        """End the shared read transaction, if one is open."""
        if self._reading is None:
            return
        self._reading.cancel()
        self._reading = None
        if self._conn is not None and self._conn.in_transaction:
            self._conn.execute("COMMIT")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"response cache {self.path} is closed")
        return self._conn


def _open(path: Path, attempts: int = 50) -> sqlite3.Connection:
    """Open (and on first use create) the cache file.

    Several processes may open one file at the same moment (the workers or Ray actors of one machine);
    switching a new file to WAL can then answer "database is locked" at once, without waiting for the busy
    timeout, so the setup is retried briefly.
    """
    for attempt in range(attempts):
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # Checkpoint the WAL every ~40 MB instead of ~4 MB: an index page rewritten by many commits is
            # copied back to the database once per checkpoint (about 3 µs less CPU per insert, measured).
            conn.execute("PRAGMA wal_autocheckpoint=10000")
            conn.execute(_CREATE_TABLE)
            _convert_without_rowid(conn)
            _convert_hex_keys(conn)
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


def _convert_without_rowid(conn: sqlite3.Connection) -> None:
    """Move a file made with the old ``WITHOUT ROWID`` table to the rowid layout (once; entries kept)."""
    if not _is_without_rowid(conn):
        return
    with _transaction(conn):
        if not _is_without_rowid(conn):  # another process converted it while this one waited
            return
        conn.execute("ALTER TABLE responses RENAME TO responses_without_rowid")
        conn.execute(_CREATE_TABLE)
        conn.execute(
            "INSERT INTO responses (key, value, created_at) "
            "SELECT key, value, created_at FROM responses_without_rowid ORDER BY created_at"
        )
        conn.execute("DROP TABLE responses_without_rowid")


#: `PRAGMA user_version` of a file whose keys are stored by `stored_key`.
_BINARY_KEYS = 1


def stored_key(key: str) -> bytes:
    """A key as the file stores it: a `cache_key` digest as its 32 bytes, any other key as its UTF-8."""
    if len(key) == 64:
        try:
            return bytes.fromhex(key)
        except ValueError:
            pass
    return key.encode()


def _convert_hex_keys(conn: sqlite3.Connection) -> None:
    """Store the keys of a file written with hex keys as bytes (once; entries kept)."""
    if _user_version(conn) >= _BINARY_KEYS:
        return
    with _transaction(conn):
        if _user_version(conn) >= _BINARY_KEYS:  # another process converted it while this one waited
            return
        conn.create_function("datamill_stored_key", 1, stored_key, deterministic=True)
        conn.execute(
            "UPDATE OR REPLACE responses SET key = datamill_stored_key(key) WHERE typeof(key) = 'text'"
        )
        conn.execute(f"PRAGMA user_version = {_BINARY_KEYS}")


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _is_without_rowid(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'responses'").fetchone()
    return row is not None and "WITHOUT ROWID" in str(row[0]).upper()


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
