"""The batch journal: which requests went into which provider batch, and what each batch answered.

A small SQLite file beside a run's checkpoint (in memory when a run gives none). Every change is committed
before the step that depends on it, so a process killed at any point (kill -9 included) finds on restart:

- a batch named and its requests listed, in state ``submitting``, before the create call is sent;
- the provider's batch id, in state ``submitted``, as soon as the create call answers;
- every request's answer (status and reply body), in state ``ended``, before any caller reads one.

A restarted run asks for the same requests (the same rows, the same prompts) and finds them here: a request
of a submitted batch waits for that batch to be polled, one of an ended batch gets its stored answer, and
nothing is submitted twice.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    name TEXT PRIMARY KEY,
    route TEXT NOT NULL,
    remote_id TEXT,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    custom_id TEXT NOT NULL,
    status INTEGER,
    body BLOB
);
CREATE INDEX IF NOT EXISTS items_by_batch ON items (name);
"""

SUBMITTING = "submitting"
SUBMITTED = "submitted"
ENDED = "ended"


@dataclass(frozen=True, slots=True)
class JournalBatch:
    name: str
    route: str
    remote_id: str | None
    state: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class JournalItem:
    """A request in a batch: its custom id, and once the batch ended its status (0: no answer) and body."""

    key: str
    batch: str
    custom_id: str
    status: int | None
    body: bytes | None


class BatchJournal:
    """Batches and their requests, durable in ``path`` (None: in memory, for one process only)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path is not None else ":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._db.commit()

    def open_batch(self, name: str, route: str, items: list[tuple[str, str]]) -> None:
        """Record a batch about to be created, with its requests as ``(key, custom_id)``."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO batches (name, route, remote_id, state, created) VALUES (?, ?, NULL, ?, ?)",
                (name, route, SUBMITTING, time.time()),
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO items (key, name, custom_id) VALUES (?, ?, ?)",
                [(key, name, custom_id) for key, custom_id in items],
            )

    def submitted(self, name: str, remote_id: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE batches SET remote_id = ?, state = ? WHERE name = ?", (remote_id, SUBMITTED, name)
            )

    def ended(self, name: str, results: dict[str, tuple[int, bytes]], reason: str | None = None) -> None:
        """Store each request's answer by custom id (requests with none get status 0) and end the batch."""
        with self._lock, self._db:
            for custom_id, (status, body) in results.items():
                self._db.execute(
                    "UPDATE items SET status = ?, body = ? WHERE name = ? AND custom_id = ?",
                    (status, body, name, custom_id),
                )
            self._db.execute(
                "UPDATE items SET status = 0, body = ? WHERE name = ? AND status IS NULL",
                ((reason or "no answer in the batch's results").encode(), name),
            )
            self._db.execute("UPDATE batches SET state = ?, reason = ? WHERE name = ?", (ENDED, reason, name))

    def forget(self, name: str) -> None:
        """Drop a batch that was never created, and its requests (they are queued again)."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM items WHERE name = ?", (name,))
            self._db.execute("DELETE FROM batches WHERE name = ?", (name,))

    def item(self, key: str) -> JournalItem | None:
        with self._lock:
            row = self._db.execute(
                "SELECT key, name, custom_id, status, body FROM items WHERE key = ?", (key,)
            ).fetchone()
        return JournalItem(*row) if row is not None else None

    def batch(self, name: str) -> JournalBatch | None:
        with self._lock:
            row = self._db.execute(
                "SELECT name, route, remote_id, state, reason FROM batches WHERE name = ?", (name,)
            ).fetchone()
        return JournalBatch(*row) if row is not None else None

    def items_of(self, name: str) -> list[JournalItem]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, name, custom_id, status, body FROM items WHERE name = ? ORDER BY rowid", (name,)
            ).fetchall()
        return [JournalItem(*row) for row in rows]

    def batches(self) -> list[JournalBatch]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, route, remote_id, state, reason FROM batches ORDER BY created"
            ).fetchall()
        return [JournalBatch(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
