"""The bare PUT upload link: signed, expiring, single-use, size-limited, answered directly with 200."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import adaption
import httpx
import pytest

from conftest import RunningServer, running_server
from datamill.server.signing import UPLOAD
from datamill.services.settings.server import ServerSettings
from datamill.store.models import Upload
from datamill.store.uploads import STALE_CLAIM

LIMIT = 1024


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose upload limit is 1 KiB."""
    settings = ServerSettings.for_data_dir(tmp_path_factory.mktemp("small"), max_upload_bytes=LIMIT)
    with running_server(settings) as running:
        yield running


def _link(client: adaption.Adaption) -> str:
    created = client.datasets.create(source={"name": "data.csv"})
    assert created.upload_instructions is not None
    return created.upload_instructions.url


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def _assert_json_error(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status
    body = response.json()
    assert body["statusCode"] == status
    assert words in body["message"]


def test_the_link_points_at_this_server_and_takes_a_bare_put(
    server: RunningServer, client: adaption.Adaption
) -> None:
    url = _link(client)
    assert url.startswith(server.base_url + "/_uploads/")
    response = httpx.put(url, content=b"question,answer\nq,a\n")  # no auth, no content type
    assert response.status_code == 200
    assert response.json()["size_bytes"] == 20


def test_a_used_link_cannot_be_replayed(client: adaption.Adaption) -> None:
    url = _link(client)
    assert httpx.put(url, content=b"a,b\n1,2\n").status_code == 200
    _assert_json_error(httpx.put(url, content=b"x,y\n3,4\n"), 403, "already been used")


@pytest.mark.parametrize(
    "change",
    [
        {"token": "0" * 64},
        {"token": ""},
        {"token": "eyJ1cGxvYWRfaWQiOiJ1cGxfeCIsImV4cCI6NDEwMjQ0NDgwMH0.AAAA"},  # a later expiry, unsigned
        {"token": "x", "expires": "²", "signature": "²"},  # not digits a naive int() takes
    ],
)
def test_an_altered_link_is_refused(client: adaption.Adaption, change: dict[str, str]) -> None:
    response = httpx.put(_with_query(_link(client), **change), content=b"a\n1\n")
    assert response.status_code == 403
    assert response.json()["statusCode"] == 403


def test_a_link_for_another_upload_id_is_refused(client: adaption.Adaption) -> None:
    first, second = _link(client), _link(client)
    forged = urlunsplit(urlsplit(first)._replace(path=urlsplit(second).path))
    _assert_json_error(httpx.put(forged, content=b"a\n1\n"), 403, "signature")


def test_an_expired_link_is_refused(server: RunningServer, client: adaption.Adaption) -> None:
    url = _link(client)
    upload_id = urlsplit(url).path.rsplit("/", 1)[-1]
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    token = server.context.signer.sign(UPLOAD, {"upload_id": upload_id}, past)
    expired = url.split("?")[0] + "?" + urlencode({"token": token})  # validly signed, but past
    _assert_json_error(httpx.put(expired, content=b"a\n1\n"), 403, "expired")
    assert httpx.put(url, content=b"a\n1\n").status_code == 200  # the real link still works


def test_an_upload_over_the_limit_is_413_and_the_link_stays_usable(small_server: RunningServer) -> None:
    client = small_server.client()
    url = _link(client)
    _assert_json_error(httpx.put(url, content=b"x" * (LIMIT * 4)), 413, f"limit of {LIMIT} bytes")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while streaming
        for _ in range(8):
            yield b"y" * 256

    _assert_json_error(httpx.put(url, content=chunks()), 413, "limit")
    assert httpx.put(url, content=b"question,answer\nq,a\n").status_code == 200


def test_upload_file_of_a_too_large_file_fails_at_the_put(
    small_server: RunningServer, tmp_path: Path
) -> None:
    client = small_server.client()
    path = tmp_path / "big.csv"
    path.write_text("question,answer\n" + "q,a\n" * LIMIT, encoding="utf-8")
    with pytest.raises(httpx.HTTPStatusError) as caught:
        client.datasets.upload_file(path)
    assert caught.value.response.status_code == 413


def test_a_batch_declaring_a_file_over_the_limit_is_400(small_server: RunningServer) -> None:
    client = small_server.client()
    files = [{"file_name": "a.csv", "file_format": "csv", "file_size_bytes": LIMIT + 1}]
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.upload.initiate_batch(name="big", files=files)
    assert "files[0].file_size_bytes" in str(caught.value)


def _claimed(server: RunningServer, url: str, at: dt.datetime) -> None:
    """Leave the link's slot claimed at `at`, as a PUT does whose process then dies mid-stream."""
    upload_id = urlsplit(url).path.rsplit("/", 1)[-1]
    with server.context.store.session() as session:
        slot = session.get(Upload, upload_id)
        assert slot is not None
        slot.state, slot.received_at = "receiving", at


def test_a_put_in_progress_keeps_the_link_busy(server: RunningServer, client: adaption.Adaption) -> None:
    url = _link(client)
    _claimed(server, url, dt.datetime.now(dt.UTC))
    _assert_json_error(httpx.put(url, content=b"a\n1\n"), 403, "in progress")


def test_a_link_whose_put_died_with_its_process_can_be_sent_again(
    server: RunningServer, client: adaption.Adaption
) -> None:
    url = _link(client)
    _claimed(server, url, dt.datetime.now(dt.UTC) - STALE_CLAIM - dt.timedelta(seconds=1))
    response = httpx.put(url, content=b"question,answer\nq,a\n")
    assert response.status_code == 200
    assert response.json()["size_bytes"] == 20
    _assert_json_error(httpx.put(url, content=b"a\n1\n"), 403, "already been used")


def test_the_partial_file_of_a_put_cut_short_is_removed_at_the_next_start(
    server: RunningServer, client: adaption.Adaption
) -> None:
    url = _link(client)
    upload_id = urlsplit(url).path.rsplit("/", 1)[-1]
    with server.context.store.session() as session:
        slot = session.get(Upload, upload_id)
        assert slot is not None
        key = slot.s3_key
    blobs = server.context.blobs
    target = Path(blobs.root, key)  # type: ignore[attr-defined]
    # What a PUT leaves when its process is killed mid-stream (seen after a kill -9 of `datamill serve`):
    # the bytes received so far in a hidden .part file beside the blob's place, never renamed into place.
    target.parent.mkdir(parents=True, exist_ok=True)
    dead_part = target.with_name(f".{target.name}.k1ll3d.part")
    dead_part.write_bytes(b"question,answer\n" * 1000)
    live = blobs.open_writer(key)
    live.write(b"question,answer\n")
    folder = target.parent
    old = dt.datetime.now(dt.UTC).timestamp() - 2 * 86400
    os.utime(dead_part, (old, old))

    server.context.purge.sweep()  # what the server runs when it starts

    left = list(folder.glob(".*.part"))
    assert dead_part not in left
    assert len(left) == 1  # a write still going is left alone
    live.abort()
    assert list(folder.glob(".*.part")) == []
    assert httpx.put(url, content=b"question,answer\nq,a\n").status_code == 200  # and the link still works
