"""Rate limits per API key and per address for failed authentications: the windows, the counts shared
through the database, 429 with Retry-After on raw HTTP, and the SDKs riding it out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import adaption
import httpx
import pytest

import dataframer
from conftest import RunningServer, running_server
from datamill.core.errors import ConfigError
from datamill.server import create_app
from datamill.server.context import ServerContext
from datamill.server.ratelimit import RateLimiter
from datamill.services.settings.server import ServerSettings
from datamill.store import Store
from datamill.store.ratelimit_storage import DatabaseStorage

PER_MINUTE = 120  # two a second
BURST = 2
ANON = 4  # failed authentications an address may make a minute


def test_a_key_gets_its_burst_per_window_and_each_key_its_own() -> None:
    limiter = RateLimiter(60, burst=3)  # three per three-second window: one a second on average
    assert limiter.window_s == 3
    assert [limiter.acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("k")
    assert 0 < wait <= 3
    assert limiter.acquire("other") == 0.0  # each identity has its own count
    assert limiter.allows("k") > 0  # asking does not count
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)


def test_the_burst_defaults_to_a_minute() -> None:
    limiter = RateLimiter(5)
    assert limiter.window_s == 60
    assert [limiter.acquire("a") == 0.0 for _ in range(6)] == [True] * 5 + [False]


def test_limiters_on_one_database_count_together(tmp_path: Path) -> None:
    """Two API processes share the metadata database, so their limiters share the counts."""
    store = Store.from_url(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    first = RateLimiter(60, burst=4, storage=DatabaseStorage(store))
    second = RateLimiter(60, burst=4, storage=DatabaseStorage(store))
    assert [first.acquire("k"), second.acquire("k"), first.acquire("k"), second.acquire("k")] == [0.0] * 4
    assert second.acquire("k") > 0
    assert first.acquire("k") > 0
    assert first.acquire("other") == 0.0


def test_settings_read_the_limit_from_the_environment(tmp_path: object) -> None:
    env = {"DATAMILL_HOME": str(tmp_path), "DATAMILL_RATE_LIMIT_PER_MINUTE": "0"}
    assert ServerSettings.from_env(env).rate_limit_per_minute == 0
    env |= {"DATAMILL_RATE_LIMIT_PER_MINUTE": "30", "DATAMILL_RATE_LIMIT_BURST": "5"}
    settings = ServerSettings.from_env(env)
    assert (settings.rate_limit_per_minute, settings.rate_limit_burst) == (30, 5)
    assert ServerSettings.from_env({"DATAMILL_HOME": str(tmp_path)}).rate_limit_per_minute == 1200
    env |= {"DATAMILL_RATE_LIMIT_ANON_PER_MINUTE": "7", "DATAMILL_RATE_LIMIT_STORAGE": "memory"}
    settings = ServerSettings.from_env(env)
    assert (settings.rate_limit_anon_per_minute, settings.rate_limit_storage) == (7, "memory")


def test_a_storage_the_limits_library_cannot_open_is_a_config_error(tmp_path: Path) -> None:
    settings = ServerSettings.for_data_dir(tmp_path, rate_limit_storage="nosuch://x")
    with pytest.raises(ConfigError, match="DATAMILL_RATE_LIMIT_STORAGE"):
        create_app(context=ServerContext.build(settings))


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = ServerSettings.for_data_dir(
        tmp_path_factory.mktemp("limited"),
        rate_limit_per_minute=PER_MINUTE,
        rate_limit_burst=BURST,
    )
    with running_server(settings) as running:
        yield running


def _burst(url: str, key: str, count: int) -> list[httpx.Response]:
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}) as http:
        return [http.get(url) for _ in range(count)]


def test_raw_http_over_the_limit_gets_429_with_retry_after(limited: RunningServer) -> None:
    key = limited.new_key()
    answers = _burst(f"{limited.base_url}/api/v1/datasets", key, BURST + 2)
    assert [a.status_code for a in answers[:BURST]] == [200] * BURST
    refused = answers[-1]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-should-retry"] == "true"
    body = refused.json()
    assert (body["statusCode"], body["error"]) == (429, "Too Many Requests")
    assert "retry in" in body["message"]
    other = _burst(f"{limited.base_url}/api/v1/datasets", limited.new_key(), 1)[0]
    assert other.status_code == 200  # the limit is per key


def test_dataframer_paths_answer_429_in_their_error_shape(limited: RunningServer) -> None:
    answers = _burst(f"{limited.base_url}/api/dataframer/specs/", limited.new_key(), BURST + 2)
    refused = answers[-1]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["code"] == "rate_limited"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = ServerSettings.for_data_dir(
        tmp_path_factory.mktemp("guarded"), rate_limit_anon_per_minute=ANON
    )
    with running_server(settings) as running:
        yield running


def test_requests_without_a_valid_key_count_against_their_address(guarded: RunningServer) -> None:
    limited = guarded
    valid = limited.new_key()
    answers = _burst(f"{limited.base_url}/api/v1/datasets", "dm_not-a-key", ANON + 3)
    assert [a.status_code for a in answers] == [401] * ANON + [429] * 3  # no lookup once over
    refused = answers[-1]
    assert "from this address" in refused.json()["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    with httpx.Client(base_url=limited.base_url) as http:
        assert http.post("/login", data={"api_key": "dm_guess"}).status_code == 429  # sign-in guesses too
        assert http.get("/healthz").status_code == 200  # other routes are not limited
    assert _burst(f"{limited.base_url}/api/v1/datasets", valid, 1)[0].status_code == 429


def test_two_api_processes_on_one_database_share_the_limits(tmp_path: Path) -> None:
    """Two servers on one database (as two API processes behind a balancer): one key's burst is shared."""
    one = ServerSettings.for_data_dir(
        tmp_path, rate_limit_per_minute=PER_MINUTE, rate_limit_burst=BURST, rate_limit_storage="database"
    )
    with running_server(one) as first, running_server(one) as second:
        key = first.new_key()
        answers = [*_burst(f"{first.base_url}/api/v1/datasets", key, BURST)]
        answers += _burst(f"{second.base_url}/api/v1/datasets", key, 1)
    assert [a.status_code for a in answers] == [200] * BURST + [429]


def _recording_client() -> tuple[httpx.Client, list[int]]:
    statuses: list[int] = []
    http = httpx.Client(event_hooks={"response": [lambda response: statuses.append(response.status_code)]})
    return http, statuses


def test_the_adaption_sdk_rides_out_a_burst(limited: RunningServer) -> None:
    http, statuses = _recording_client()
    with adaption.Adaption(
        api_key=limited.new_key(), base_url=limited.base_url, max_retries=5, http_client=http
    ) as client:
        pages = [client.datasets.list(limit=5) for _ in range(BURST + 3)]
    assert len(pages) == BURST + 3
    assert 429 in statuses  # it was slowed down ...
    assert statuses.count(200) == BURST + 3  # ... and every call succeeded


def test_the_dataframer_sdk_rides_out_a_burst(limited: RunningServer) -> None:
    http, statuses = _recording_client()
    with dataframer.Dataframer(
        api_key=limited.new_key(), base_url=limited.base_url, max_retries=5, http_client=http
    ) as client:
        for _ in range(BURST + 3):
            assert client.dataframer.specs.list() is not None
    assert 429 in statuses
    assert statuses.count(200) == BURST + 3
