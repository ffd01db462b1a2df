"""How fast the gateway calls each model: concurrency, per-minute budgets and what providers say about them.

- `concurrency`: `AdaptiveLimiter`, one per (provider, model, endpoint): slow start, AIMD on 429s, and one
  FIFO queue that also waits for the budgets; `LimiterPool` makes them.
- `pacing` and `buckets`: the requests and tokens budgets as token buckets, declared on the route or learnt
  from the providers' headers, settled at each reply's real usage.
- `estimate`: a request's expected tokens before it is sent.
- `headers`: the rate-limit headers of OpenAI and Anthropic, ``Retry-After`` and Gemini's ``RetryInfo``.
- `shared`: a concurrency limit shared by the worker processes of a fleet.

The user guide is the rate-limit section of ``docs/models.md``.
"""
