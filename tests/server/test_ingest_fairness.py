"""Fair ingest between tenants: one tenant's many slow files never keep another tenant's small file waiting.

Two ingest workers, a real `IngestService` over SQLite and a local blob store. Tenant A's six uploads are
slow (each holds its worker until the test lets it go); tenant B uploads one 3-row csv after them. B's file
is read while A's first file still holds its worker and five more of A's wait: one tenant never holds every
worker, and a free worker goes to the tenant with the fewest files being read. Within a tenant, files are
read in upload order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from datamill.services.datasets.ingest import BackgroundIngest, IngestService
from datamill.services.datasets.queue import FairQueue
from datamill.services.settings.server import ServerSettings
from datamill.services.tenants import TenantService
from datamill.store import Store
from datamill.store import datasets as repo
from datamill.store.blobs.local import LocalBlobStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store.from_url(f"sqlite:///{tmp_path / 'db.sqlite'}")
    made.migrate()
    yield made
    made.close()


class SlowForOneTenant(IngestService):
    """The real ingest, except that `slow_tenant`'s files hold their worker until `release` is set."""

    def __init__(self, store: Store, blobs: LocalBlobStore, slow_tenant: str) -> None:
        super().__init__(store, blobs)
        self.slow_tenant = slow_tenant
        self.release = threading.Event()
        self.started: list[str] = []
        self._lock = threading.Lock()

    def process(self, dataset_id: str) -> None:
        with self._lock:
            self.started.append(dataset_id)
        if self.tenant_of(dataset_id) == self.slow_tenant:
            assert self.release.wait(30)
        super().process(dataset_id)


def _uploaded(store: Store, blobs: LocalBlobStore, tenant_id: str, name: str) -> str:
    """A dataset of `tenant_id` whose 3-row csv upload is complete and waits to be read."""
    key = f"uploads/{tenant_id}/{name}.csv"
    path = blobs.root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("question,answer\nq1,a1\nq2,a2\nq3,a3\n", encoding="utf-8")
    with store.session() as session:
        dataset = repo.add_dataset_with_file(
            session,
            tenant_id=tenant_id,
            name=name,
            file=repo.StoredFile(f"{name}.csv", "csv", key, path.stat().st_size, "0" * 64),
            status="pending",
            ingest_state="uploaded",
        )
    return str(dataset.id)


def _status(store: Store, dataset_id: str) -> str:
    with store.session() as session:
        row = repo.get_dataset_any_tenant(session, dataset_id)
        assert row is not None
        return str(row.status)


def test_a_small_file_of_another_tenant_is_read_while_one_tenant_fills_the_workers(
    store: Store, tmp_path: Path
) -> None:
    tenants = TenantService(store)
    busy, other = (tenants.create_key(name).tenant.id for name in ("busy", "other"))
    blobs = LocalBlobStore(tmp_path / "blobs")
    service = SlowForOneTenant(store, blobs, slow_tenant=busy)
    queue = BackgroundIngest(service, workers=2)
    queue.start()
    try:
        slow = [_uploaded(store, blobs, busy, f"big{n}") for n in range(6)]
        for dataset_id in slow:
            queue.submit(dataset_id)
        small = _uploaded(store, blobs, other, "small")
        queue.submit(small)
        deadline = time.monotonic() + 20
        while _status(store, small) == "pending" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _status(store, small) == "awaiting_input"
        # The busy tenant's first file still holds its worker; its other five still wait.
        assert [_status(store, d) for d in slow] == ["pending"] * 6
        assert service.started == [slow[0], small]
        service.release.set()
        deadline = time.monotonic() + 20
        while any(_status(store, d) == "pending" for d in slow) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [_status(store, d) for d in slow] == ["awaiting_input"] * 6
        assert service.started == [slow[0], small, *slow[1:]]  # in upload order within the tenant
    finally:
        service.release.set()
        queue.close()


def test_datasets_left_waiting_are_queued_again_on_start(store: Store, tmp_path: Path) -> None:
    tenant = TenantService(store).create_key("t").tenant.id
    blobs = LocalBlobStore(tmp_path / "blobs")
    waiting = [_uploaded(store, blobs, tenant, f"f{n}") for n in range(3)]
    queue = BackgroundIngest(IngestService(store, blobs), workers=2)
    queue.start()
    try:
        deadline = time.monotonic() + 20
        while any(_status(store, d) == "pending" for d in waiting) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [_status(store, d) for d in waiting] == ["awaiting_input"] * 3
    finally:
        queue.close()


def test_the_fair_order_takes_the_tenant_with_the_fewest_running_then_the_oldest() -> None:
    queue = FairQueue(max_per_tenant=2)
    for n in range(3):
        queue.put("a", f"a{n}")
    queue.put("b", "b0")
    queue.put("c", "c0")
    queue.put("b", "b1")
    taken = [queue.take() for _ in range(3)]
    assert taken == [("a", "a0"), ("b", "b0"), ("c", "c0")]
    # Each tenant has one running: the oldest waiting dataset goes next (a1 was queued before b1).
    assert queue.take() == ("a", "a1")
    queue.done("b")
    queue.done("c")
    # b now has none running, a has two: b's next goes before a's older one.
    assert queue.take() == ("b", "b1")
    # a is at its cap of two: its last dataset waits for one of them to finish.
    assert queue.take() is None
    assert len(queue) == 1
    queue.done("a")
    assert queue.take() == ("a", "a2")
    assert queue.take() is None
    assert len(queue) == 0


def _wait(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition()


@pytest.mark.parametrize(("share", "busy_running"), [("2", 2), ("3", 3)])
def test_the_tenant_share_setting_caps_one_tenant_s_workers(
    store: Store, tmp_path: Path, share: str, busy_running: int
) -> None:
    """Three workers: with ``DATAMILL_INGEST_TENANT_WORKERS=2`` the busy tenant's slow files hold two and
    the other tenant's file is read on the third; with 3 they hold all three and it waits for them."""
    settings = ServerSettings.from_env(
        {"DATAMILL_INGEST_WORKERS": "3", "DATAMILL_INGEST_TENANT_WORKERS": share}, data_dir=tmp_path
    )
    tenants = TenantService(store)
    busy, other = (tenants.create_key(name).tenant.id for name in ("busy", "other"))
    blobs = LocalBlobStore(tmp_path / "blobs")
    service = SlowForOneTenant(store, blobs, slow_tenant=busy)
    queue = BackgroundIngest(
        service, workers=settings.ingest_workers, max_per_tenant=settings.ingest_tenant_workers
    )
    queue.start()
    try:
        slow = [_uploaded(store, blobs, busy, f"big{n}") for n in range(6)]
        for dataset_id in slow:
            queue.submit(dataset_id)
        _wait(lambda: len(service.started) == busy_running)
        small = _uploaded(store, blobs, other, "small")
        queue.submit(small)
        if busy_running < settings.ingest_workers:
            _wait(lambda: _status(store, small) == "awaiting_input")
        else:
            time.sleep(0.5)  # every worker is held by the busy tenant: the small file cannot be taken
            assert _status(store, small) == "pending"
        assert service.started[:busy_running] == slow[:busy_running]
        assert [_status(store, d) for d in slow] == ["pending"] * 6
        service.release.set()
        _wait(lambda: all(_status(store, d) == "awaiting_input" for d in [*slow, small]))
    finally:
        service.release.set()
        queue.close()
