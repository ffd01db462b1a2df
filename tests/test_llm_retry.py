import random

import pytest

from datamill.core.errors import ConfigError, PermanentModelError, RateLimitedError, TransientError
from datamill.llm.retry import RetryPolicy


def test_transient_backoff_is_jittered_exponential_and_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, rng=random.Random(1))

    for retry in range(8):
        ceiling = min(3.0, 0.5 * 2**retry)
        delays = [policy.transient_delay(retry) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spreads over the whole range
        assert len(set(delays)) > 100


def test_rate_limit_waits_retry_after_scaled_and_capped() -> None:
    policy = RetryPolicy(max_retry_after=60.0, retry_after_scale=0.5)

    assert policy.rate_limit_delay(0, 4.0) == 2.0
    assert policy.rate_limit_delay(3, 3600.0) == 30.0


def test_rate_limit_without_retry_after_backs_off() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0, rng=random.Random(2))

    assert 0.5 <= policy.rate_limit_delay(0, None) <= 1.0
    assert 4.0 <= policy.rate_limit_delay(5, None) <= 8.0


def test_budgets_are_counted_apart() -> None:
    state = RetryPolicy(max_attempts=2, max_rate_limit_retries=2, base_delay=0.0).start()

    state.next_delay(RateLimitedError("429", retry_after=0.0))
    state.next_delay(RateLimitedError("429", retry_after=0.0))
    state.next_delay(TransientError("502"))  # the rate-limit retries did not use the transient budget
    with pytest.raises(
        TransientError, match=r"gave up after 4 attempts \(2 transient failures, 2 rate-limited\)"
    ):
        state.next_delay(TransientError("503 last"))


def test_exhausted_rate_limits_keep_their_class_and_cause() -> None:
    state = RetryPolicy(max_rate_limit_retries=0).start()
    last = RateLimitedError("HTTP 429", retry_after=9.0)

    with pytest.raises(RateLimitedError, match=r"gave up after 1 attempt .*last error: HTTP 429") as caught:
        state.next_delay(last)

    assert caught.value.retry_after == 9.0
    assert caught.value.__cause__ is last


@pytest.mark.parametrize("error", [PermanentModelError("400", status=400), ConfigError("no key")])
def test_permanent_errors_are_never_retried(error: Exception) -> None:
    state = RetryPolicy().start()

    with pytest.raises(type(error)) as caught:
        state.next_delay(error)  # type: ignore[arg-type]

    assert caught.value is error
    assert state.attempts == 0
