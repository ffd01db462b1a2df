"""A realistic provider simulator for tests and benchmarks.

A loopback server speaking the OpenAI chat
completions, Anthropic Messages and Gemini ``generateContent`` wire formats, with switchable behaviours (the
quirks and failures real providers show), per-minute budgets, usage with cached-token fields, and a log of
every request it received.

In a test::

    async with ProviderSimulator(rates={"refusal_text": 0.1}, seed=1) as sim:
        routing = Routing.from_dict(sim.routes())       # sim-openai/*, sim-anthropic/*, sim-gemini/*
        ...
        sim.set("truncation", 1.0)                      # change behaviours at runtime
        sim.log.entries                                 # every request: body, headers, behaviour, billed

From a shell: ``python -m datamill.llm.simulator --port 8710 --rate refusal_text=0.02``. The user guide is
``docs/testing.md``.
"""

from datamill.llm.simulator.answers import REFUSAL_FIELD, REFUSAL_TEXT
from datamill.llm.simulator.behaviours import BEHAVIOURS, ERROR_BEHAVIOURS, Behaviours
from datamill.llm.simulator.formats import Answer, WireRequest
from datamill.llm.simulator.log import Billed, LogEntry, SimLog
from datamill.llm.simulator.server import FAMILIES, ProviderSimulator
from datamill.llm.simulator.thread import serve_in_thread

__all__ = [
    "BEHAVIOURS",
    "ERROR_BEHAVIOURS",
    "FAMILIES",
    "REFUSAL_FIELD",
    "REFUSAL_TEXT",
    "Answer",
    "Behaviours",
    "Billed",
    "LogEntry",
    "ProviderSimulator",
    "SimLog",
    "WireRequest",
    "serve_in_thread",
]
