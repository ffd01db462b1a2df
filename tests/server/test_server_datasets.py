"""Dataset endpoints through the official SDK: get, status, list (pages, filters, sorts), delete, download,
authentication, tenant isolation and the error shape."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import adaption
import httpx
import pytest
from server_helpers import fields_of, wait_for, write_csv

from conftest import RunningServer


@dataclass
class Listing:
    """A tenant with five settled datasets, as `get` shows them."""

    client: adaption.Adaption
    key: str
    datasets: list[Any]


@pytest.fixture(scope="module")
def listing(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Listing:
    key = server.new_key()
    client = server.client(key=key)
    folder = tmp_path_factory.mktemp("listing")
    specs = [
        ("Alpha report", {}),
        (
            "beta notes",
            {"processing_mode": "raw", "column_mapping": {"prompt": "question", "completion": "answer"}},
        ),
        ("Gamma ALPHA", {}),
        (
            "delta",
            {"processing_mode": "raw", "column_mapping": {"prompt": "missing", "completion": "answer"}},
        ),
        ("epsilon alpha", {}),
    ]
    ids = []
    for i, (name, options) in enumerate(specs):
        done = client.datasets.upload_file(write_csv(folder / f"f{i}.csv", i + 1), name=name, **options)
        wait_for(client, done.dataset_id)
        ids.append(done.dataset_id)
    return Listing(client, key, [client.datasets.get(i) for i in ids])


@pytest.fixture
def raw(server: RunningServer, listing: Listing) -> Iterator[httpx.Client]:
    """Plain HTTP with the listing tenant's key, for what the SDK cannot send."""
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {listing.key}"}) as http:
        yield http


def _all_pages(client: adaption.Adaption, **params: Any) -> tuple[list[str], list[int]]:
    ids, sizes = [], []
    for page in client.datasets.list(limit=2, **params).iter_pages():
        sizes.append(len(page.datasets))
        ids += [d.dataset_id for d in page.datasets]
    return ids, sizes


def _expected(
    listing: Listing, keep: Any = lambda d: True, sort: str = "created_at", desc: bool = True
) -> list[str]:
    chosen = [d for d in listing.datasets if keep(d)]
    chosen.sort(key=lambda d: (getattr(d, sort), d.dataset_id), reverse=desc)
    return [d.dataset_id for d in chosen]


def test_the_fixture_has_each_status(listing: Listing) -> None:
    statuses = [d.status for d in listing.datasets]
    assert statuses == ["awaiting_input", "succeeded", "awaiting_input", "failed", "awaiting_input"]


def test_list_pages_through_everything_newest_first(listing: Listing) -> None:
    ids, sizes = _all_pages(listing.client)
    assert ids == [d.dataset_id for d in reversed(listing.datasets)]
    assert sizes == [2, 2, 1]


def test_the_last_page_has_a_null_cursor(raw: httpx.Client) -> None:
    first = raw.get("/api/v1/datasets", params={"limit": "2.0"}).json()
    assert len(first["datasets"]) == 2
    assert isinstance(first["next_cursor"], str)
    second = raw.get("/api/v1/datasets", params={"limit": "2.0", "cursor": first["next_cursor"]}).json()
    third = raw.get("/api/v1/datasets", params={"limit": "2.0", "cursor": second["next_cursor"]}).json()
    assert (len(third["datasets"]), third["next_cursor"]) == (1, None)
    item = first["datasets"][0]
    assert set(item) == {
        "dataset_id",
        "name",
        "status",
        "updated_at",
        "created_at",
        "row_count",
        "description",
    }


@pytest.mark.parametrize(
    ("params", "keep", "sort", "desc"),
    [
        ({"status": "awaiting_input"}, lambda d: d.status == "awaiting_input", "created_at", True),
        ({"status": "complete"}, lambda d: d.status == "succeeded", "created_at", True),
        ({"q": "ALPHA"}, lambda d: "alpha" in d.name.lower(), "created_at", True),
        ({"type": "original"}, lambda d: True, "created_at", True),
        ({"type": "combined"}, lambda d: False, "created_at", True),
        ({"sort": "name", "sort_direction": "asc"}, lambda d: True, "name", False),
        ({"sort": "name"}, lambda d: True, "name", True),
        ({"sort": "updated_at", "sort_direction": "asc"}, lambda d: True, "updated_at", False),
        ({"sort": "created_at", "sort_direction": "asc"}, lambda d: True, "created_at", False),
        (
            {"status": "awaiting_input", "q": "a", "sort": "name", "sort_direction": "asc"},
            lambda d: d.status == "awaiting_input" and "a" in d.name.lower(),
            "name",
            False,
        ),
    ],
)
def test_filters_and_sorts_hold_on_every_page(
    listing: Listing, params: dict[str, str], keep: Any, sort: str, desc: bool
) -> None:
    ids, sizes = _all_pages(listing.client, **params)
    assert ids == _expected(listing, keep, sort, desc)
    assert all(size <= 2 for size in sizes)


def test_created_after_and_before_bound_the_list(listing: Listing) -> None:
    middle = listing.datasets[2].created_at
    after, _ = _all_pages(listing.client, created_after=middle.isoformat())
    before, _ = _all_pages(listing.client, created_before=middle.isoformat().replace("+00:00", "Z"))
    assert after == _expected(listing, lambda d: d.created_at > middle)
    assert before == _expected(listing, lambda d: d.created_at < middle)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "2.5"}, "limit"),
        ({"status": "done"}, "status"),
        ({"sort": "size"}, "sort"),
        ({"sort_direction": "up"}, "sort_direction"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"type": "weird"}, "type"),
    ],
)
def test_bad_list_parameters_are_400_naming_them(
    raw: httpx.Client, params: dict[str, str], field: str
) -> None:
    response = raw.get("/api/v1/datasets", params=params)
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_a_cursor_only_works_with_its_own_sort(listing: Listing) -> None:
    page = listing.client.datasets.list(limit=2)
    assert page.next_cursor
    with pytest.raises(adaption.BadRequestError) as caught:
        listing.client.datasets.list(limit=2, cursor=page.next_cursor, sort="name")
    assert fields_of(caught.value) == ["cursor"]


def test_a_huge_limit_is_capped_not_refused(listing: Listing) -> None:
    page = listing.client.datasets.list(limit=1000)
    assert len(page.datasets) == 5
    assert page.next_cursor is None


def test_get_answers_every_field_with_utc_datetimes(listing: Listing, raw: httpx.Client) -> None:
    body = raw.get(f"/api/v1/datasets/{listing.datasets[0].dataset_id}").json()
    assert set(body) >= {
        "dataset_id", "kind", "source_dataset_id", "name", "status", "created_at", "created_by_user_id",
        "updated_at", "row_count", "configured_column_mapping", "evaluation_summary", "run_id", "progress",
        "error_data", "image_column_formats",
    }  # fmt: skip
    assert body["created_at"].endswith("Z")
    assert body["updated_at"].endswith("Z")
    assert (body["row_count"], body["progress"], body["configured_column_mapping"]) == (1, None, None)


def test_status_carries_the_error_of_a_failed_dataset(listing: Listing) -> None:
    status = listing.client.datasets.get_status(listing.datasets[3].dataset_id)
    assert status.status == "failed"
    assert status.error_data is not None
    assert "'missing'" in (status.error_data.message or "")


def test_missing_or_bad_keys_are_401(server: RunningServer) -> None:
    bad = adaption.Adaption(api_key="dm_not-a-real-key", base_url=server.base_url, max_retries=0)
    with bad, pytest.raises(adaption.AuthenticationError) as caught:
        bad.datasets.list()
    assert caught.value.status_code == 401
    response = httpx.get(server.base_url + "/api/v1/datasets")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "Unauthorized"


def test_a_revoked_key_is_401(server: RunningServer) -> None:
    issued = server.context.tenants.create_key("revoked-tenant")
    client = server.client(key=issued.key)
    client.datasets.list()
    assert server.context.tenants.revoke_key(issued.prefix) == 1
    with pytest.raises(adaption.AuthenticationError):
        client.datasets.list()


def test_another_tenants_dataset_is_404_everywhere(server: RunningServer, listing: Listing) -> None:
    other = server.client()
    target = listing.datasets[0].dataset_id
    for call in (
        other.datasets.get,
        other.datasets.get_status,
        other.datasets.delete,
        other.datasets.download,
    ):
        with pytest.raises(adaption.NotFoundError):
            call(target)
    assert other.datasets.list().datasets == []
    assert listing.client.datasets.get(target).dataset_id == target  # untouched


def test_delete_hides_the_dataset(client: adaption.Adaption, tmp_path: Path) -> None:
    done = client.datasets.upload_file(write_csv(tmp_path / "gone.csv", 2))
    wait_for(client, done.dataset_id)
    assert done.dataset_id in client.datasets.delete(done.dataset_id).message
    with pytest.raises(adaption.NotFoundError):
        client.datasets.get(done.dataset_id)
    with pytest.raises(adaption.NotFoundError):
        client.datasets.delete(done.dataset_id)
    assert client.datasets.list().datasets == []


def test_download_before_any_run_is_422(listing: Listing) -> None:
    with pytest.raises(adaption.UnprocessableEntityError) as caught:
        listing.client.datasets.download(listing.datasets[0].dataset_id)
    assert "no run" in str(caught.value)
    with pytest.raises(adaption.BadRequestError):
        listing.client.datasets.download(listing.datasets[0].dataset_id, file_format="xml")  # type: ignore[arg-type]


def test_errors_share_one_json_shape_and_are_not_retried(listing: Listing) -> None:
    with pytest.raises(adaption.NotFoundError) as caught:
        listing.client.datasets.get("ds_missing")
    assert caught.value.body == {
        "statusCode": 404,
        "error": "Not Found",
        "message": "dataset 'ds_missing' not found",
        "errors": [],
    }
    assert caught.value.response.headers["x-should-retry"] == "false"


def test_unparseable_requests_are_400_naming_the_field(raw: httpx.Client) -> None:
    empty = raw.post("/api/v1/datasets", json={})
    assert empty.status_code == 400
    assert [e["field"] for e in empty.json()["errors"]] == ["source"]
    broken = raw.post("/api/v1/datasets", content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    wrong_type = raw.post(
        "/api/v1/datasets/upload/initiate-batch", json={"name": "x", "files": [{"file_name": 1}]}
    )
    assert wrong_type.status_code == 400
    fields = {e["field"] for e in wrong_type.json()["errors"]}
    assert {"files[0].file_name", "files[0].file_format", "files[0].file_size_bytes"} <= fields


def test_unknown_routes_are_json_404_and_docs_are_served(server: RunningServer) -> None:
    missing = httpx.get(server.base_url + "/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["statusCode"] == 404
    spec = httpx.get(server.base_url + "/openapi.json").json()
    assert {"/api/v1/datasets", "/api/v1/datasets/{dataset_id}", "/api/v1/datasets/upload/initiate"} <= set(
        spec["paths"]
    )
    assert "swagger" in httpx.get(server.base_url + "/docs").text.lower()
