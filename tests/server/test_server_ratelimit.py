"""Rate limits per API key: the token bucket, 429 with Retry-After on raw HTTP, and the SDKs riding it out."""

from __future__ import annotations

from collections.abc import Iterator

import adaption
import httpx
import pytest

import dataframer
from conftest import RunningServer, running_server
from datamill.server.ratelimit import RateLimiter
from datamill.services.settings.server import ServerSettings

PER_MINUTE = 120  # two a second
BURST = 2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(60, burst=3, clock=clock)
    assert [limiter.acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("k") == pytest.approx(1.0)
    assert limiter.acquire("other") == 0.0  # each key has its own bucket
    clock.now += 0.5
    assert limiter.acquire("k") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("k") == 0.0
    clock.now += 3600
    assert [limiter.acquire("k") for _ in range(4)][-1] > 0  # refilled to the burst, not beyond


def test_burst_defaults_to_a_minute_and_old_keys_are_dropped() -> None:
    limiter = RateLimiter(5, clock=Clock(), max_keys=2)
    assert [limiter.acquire("a") for _ in range(6)] == [0.0] * 5 + [pytest.approx(12.0)]
    limiter.acquire("b")
    limiter.acquire("c")  # "a" is dropped: it starts again with a full bucket
    assert limiter.acquire("a") == 0.0
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)


def test_settings_read_the_limit_from_the_environment(tmp_path: object) -> None:
    env = {"DATAMILL_HOME": str(tmp_path), "DATAMILL_RATE_LIMIT_PER_MINUTE": "0"}
    assert ServerSettings.from_env(env).rate_limit_per_minute == 0
    env |= {"DATAMILL_RATE_LIMIT_PER_MINUTE": "30", "DATAMILL_RATE_LIMIT_BURST": "5"}
    settings = ServerSettings.from_env(env)
    assert (settings.rate_limit_per_minute, settings.rate_limit_burst) == (30, 5)
    assert ServerSettings.from_env({"DATAMILL_HOME": str(tmp_path)}).rate_limit_per_minute == 1200


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = ServerSettings.for_data_dir(
        tmp_path_factory.mktemp("limited"), rate_limit_per_minute=PER_MINUTE, rate_limit_burst=BURST
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


def test_requests_without_a_valid_key_are_not_counted(limited: RunningServer) -> None:
    answers = _burst(f"{limited.base_url}/api/v1/datasets", "dm_not-a-key", BURST + 3)
    assert {a.status_code for a in answers} == {401}
    assert {httpx.get(f"{limited.base_url}/healthz").status_code for _ in range(BURST + 3)} == {200}


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
