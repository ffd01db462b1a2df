"""The provider simulator on a thread of its own, for in-process CLI runs and the server's workers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fidelity_helpers import consistent_pair_judge

from datamill.llm.simulator import ProviderSimulator, serve_in_thread


@pytest.fixture
def sim() -> Iterator[ProviderSimulator]:
    responder = consistent_pair_judge(2000)
    with serve_in_thread(seed=7, retry_after_s=0.05, echo_chars=2000, responder=responder) as simulator:
        yield simulator
