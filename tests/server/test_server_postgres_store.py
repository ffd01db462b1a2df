"""The store contract, run on SQLite and on a real PostgreSQL server: migrations, tenants, datasets, runs.

Every test gets a fresh, empty database of each kind (see `pg_helpers`); the PostgreSQL half skips, saying
why, only when `DATAMILL_TEST_POSTGRES_URL` is unset.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pg_helpers import KINDS, migrated_store
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from datamill.services.tenants import TenantService
from datamill.store import Base, Dataset, Run, Store, utcnow
from datamill.store import datasets as datasets_repo
from datamill.store import runs as runs_repo
from datamill.store.ids import new_id
from datamill.store.runs import RunOutcome


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with migrated_store(str(request.param), tmp_path) as made:
        yield made


def test_migrations_build_exactly_the_models_schema(store: Store) -> None:
    store.migrate()  # a second start is a no-op
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        tables = set(inspect(connection).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}


def test_tenants_keys_and_credits(store: Store) -> None:
    tenants = TenantService(store, default_credits=50.0)
    issued = tenants.create_key("team-a")
    other = tenants.create_key("team-b", credits=5.0)
    found = tenants.authenticate(issued.key)
    assert found is not None
    assert (found.name, found.credits) == ("team-a", 50.0)
    assert tenants.add_credits("team-a", 2.5).credits == pytest.approx(52.5)
    assert [(t.name, t.credits) for t in tenants.list_tenants()] == [("team-a", 52.5), ("team-b", 5.0)]
    assert tenants.revoke_key(other.key_id) == 1
    assert tenants.authenticate(other.key) is None
    assert tenants.authenticate(issued.key) is not None


def _dataset(tenant_id: str, name: str, created: dt.datetime) -> Dataset:
    return Dataset(
        id=new_id("ds"),
        tenant_id=tenant_id,
        name=name,
        kind="uploaded",
        status="awaiting_input",
        ingest_state="ready",
        processing_mode="adapt",
        columns=["question", "answer"],
        error_data={"nested": {"ok": True}},
        created_at=created,
        updated_at=created,
    )


def test_datasets_are_scoped_paged_and_soft_deleted(store: Store) -> None:
    tenants = TenantService(store)
    mine, theirs = (tenants.create_key(name).tenant.id for name in ("mine", "theirs"))
    start = utcnow()
    made = [_dataset(mine, f"Set_{i}", start + dt.timedelta(seconds=i)) for i in range(5)]
    with store.session() as session:
        session.add_all([*made, _dataset(theirs, "foreign", start)])
    with store.session() as session:
        got = datasets_repo.get_dataset(session, mine, made[0].id)
        assert got is not None
        assert (got.columns, got.error_data, got.created_at) == (
            made[0].columns,
            {"nested": {"ok": True}},
            start,
        )
        assert datasets_repo.get_dataset(session, theirs, made[0].id) is None  # another tenant's looks absent
        filt = datasets_repo.DatasetFilter(tenant_id=mine, text="set_")  # "_" is literal, case ignored
        first = datasets_repo.page_datasets(session, filt, datasets_repo.Keyset(), limit=3)
        last = first[-1]
        after = datasets_repo.Keyset(after=(last.created_at, last.id))
        rest = datasets_repo.page_datasets(session, filt, after, limit=3)
    assert [d.name for d in first + rest] == [f"Set_{i}" for i in (4, 3, 2, 1, 0)]
    with store.session() as session:
        doomed = datasets_repo.get_dataset(session, mine, made[1].id, for_update=True)
        assert doomed is not None
        doomed.deleted_at = utcnow()
    with store.session() as session:
        assert datasets_repo.get_dataset(session, mine, made[1].id) is None


def _queued_run(store: Store, *, key: str | None = None, reserved: float = 10.0) -> tuple[str, str]:
    """A tenant with 90 credits left after reserving `reserved`, a running dataset and its queued run."""
    tenant_id = TenantService(store, default_credits=100.0 - reserved).create_key(new_id("t")).tenant.id
    now = utcnow()
    dataset = _dataset(tenant_id, "d", now)
    dataset.status = "running"
    run = Run(
        id=new_id("run"),
        tenant_id=tenant_id,
        dataset_id=dataset.id,
        source_dataset_id=dataset.id,
        kind="adapt",
        status="queued",
        request={"column_mapping": {"prompt": "q"}},
        options={},
        model="fake/x",
        launch_response={},
        credits_reserved=reserved,
        cost_usd=0.0,
        processed_rows=0,
        total_rows=5,
        attempts=0,
        idempotency_key=key,
        created_at=now,
        updated_at=now,
    )
    dataset.run_id = run.id
    with store.session() as session:
        session.add(dataset)
        session.flush()
        runs_repo.add_run(session, run)
    return tenant_id, run.id


def test_a_run_is_claimed_once_leased_and_settled(store: Store) -> None:
    tenant_id, run_id = _queued_run(store)
    now = utcnow()
    with store.session() as session:
        claimed = runs_repo.claim_next(session, "w1", now, lease_s=30)
        assert claimed is not None
        assert (claimed.id, claimed.worker_id, claimed.attempts, claimed.status) == (
            run_id,
            "w1",
            1,
            "running",
        )
        assert (claimed.started_at, claimed.heartbeat_at) == (now, now)  # UTC whatever the server's zone
    with store.session() as session:
        assert runs_repo.claim_next(session, "w2", now + dt.timedelta(seconds=29), lease_s=30) is None
        assert runs_repo.heartbeat(session, run_id, "w1", 30, {"processed_rows": 3})
        assert not runs_repo.heartbeat(session, run_id, "w2", 30, {"processed_rows": 4})
    with store.session() as session:
        outcome = RunOutcome("succeeded", rows_out=5, credits_used=4.0, evaluation={"grade": "A"})
        assert runs_repo.finish_run(session, run_id, "w1", outcome)
    with store.session() as session:
        run = runs_repo.get_run(session, tenant_id, run_id)
        assert run is not None
        assert (run.status, run.processed_rows, run.rows_out, run.evaluation) == (
            "succeeded",
            3,
            5,
            {"grade": "A"},
        )
        dataset = session.get(Dataset, run.dataset_id)
        assert dataset is not None
        assert dataset.status == "succeeded"
    (tenant,) = [t for t in TenantService(store).list_tenants() if t.id == tenant_id]
    assert tenant.credits == pytest.approx(96.0)  # 90 + the 6 reserved but unused


def test_an_expired_lease_is_taken_over_and_a_release_requeues(store: Store) -> None:
    _, run_id = _queued_run(store)
    now = utcnow()
    with store.session() as session:
        assert runs_repo.claim_next(session, "dead", now, lease_s=30) is not None
    with store.session() as session:
        taken = runs_repo.claim_next(session, "w2", now + dt.timedelta(seconds=31), lease_s=30)
        assert taken is not None
        assert (taken.id, taken.worker_id, taken.attempts) == (run_id, "w2", 2)
    with store.session() as session:
        assert not runs_repo.finish_run(session, run_id, "dead", RunOutcome("succeeded"))
        assert runs_repo.release(session, run_id, "w2")
    with store.session() as session:
        run = runs_repo.get_run_any_tenant(session, run_id)
        assert run is not None
        assert (run.status, run.worker_id, run.attempts) == ("queued", None, 1)


def test_an_idempotency_key_is_unique_per_dataset(store: Store) -> None:
    tenant_id, run_id = _queued_run(store, key="launch-1")
    with store.session() as session:
        first = runs_repo.get_run_any_tenant(session, run_id)
        assert first is not None
        found = runs_repo.run_by_key(session, tenant_id, "adapt", first.source_dataset_id or "", "launch-1")
        assert found is not None
        assert found.id == run_id
        again = Run(**{c.key: getattr(first, c.key) for c in Run.__table__.columns} | {"id": new_id("run")})
    with pytest.raises(IntegrityError), store.session() as session:
        runs_repo.add_run(session, again)
