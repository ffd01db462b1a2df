"""Route health: when a route's failures mean no call of it can succeed, and the run must stop.

Some failures are the same for every request: an endpoint that does not resolve, refuses connections, fails
TLS verification or redirects (`ConnectionConfigError`), or an API that answers 400 to every request (a
parameter the model does not support, a malformed route). Rejecting rows one by one would spend the whole
dataset on them and report an empty success, so the gateway counts them per route:

- a `ConnectionConfigError` counts always;
- a 400 or 422 (`PermanentModelError`) counts only while the route has not answered once: after a success,
  a 400 is about that request (a prompt too long) and rejects its row only.

An error that fails every row on its own (a rejected key, no quota or credit left) puts the route down at
once. Any successful reply resets the count. At `DEFAULT_STOP_AFTER` failures in a row the route is *down*:
the failing call and every later call of the route raise `RouteFailingError`, which stops the run with the
last cause in its message. A run has its own gateway, so a later run tries the route afresh.
"""

from __future__ import annotations

from datamill.core.errors import (
    ConnectionConfigError,
    PermanentModelError,
    RouteFailingError,
    fails_every_row,
)

#: Failures in a row, with no success between them, after which a route is down.
DEFAULT_STOP_AFTER = 5
#: Statuses that count while a route has never answered (every request malformed the same way).
_EVERY_REQUEST_STATUSES = frozenset({400, 422})


class RouteHealth:
    """Counts one route's consecutive systemic failures; see the module docstring."""

    __slots__ = ("consecutive", "down", "limit", "route", "successes")

    def __init__(self, route: str, limit: int = DEFAULT_STOP_AFTER) -> None:
        self.route = route
        self.limit = max(1, limit)
        self.consecutive = 0
        self.successes = 0
        self.down: BaseException | None = None

    def check(self) -> None:
        """Raise `RouteFailingError` when the route is down."""
        if self.down is not None:
            raise RouteFailingError(self.route, self.consecutive, self.down)

    def succeeded(self) -> None:
        self.consecutive = 0
        self.successes += 1

    def failed(self, error: BaseException) -> None:
        """Count ``error`` if it is systemic; raise `RouteFailingError` when that makes the route down.

        An error that fails every row by itself (`fails_every_row`: a rejected key, no quota) puts the route
        down at once without raising: the caller raises the error itself, and the calls still waiting for a
        slot do not send their requests.
        """
        if fails_every_row(error):
            self.consecutive += 1
            self.down = self.down or error
            return
        if not self.counts(error):
            return
        self.consecutive += 1
        if self.consecutive >= self.limit and self.down is None:
            self.down = error
        self.check()

    def counts(self, error: BaseException) -> bool:
        """Whether ``error`` says something about the route rather than about one request."""
        if isinstance(error, ConnectionConfigError):
            return True
        return (
            isinstance(error, PermanentModelError)
            and error.status in _EVERY_REQUEST_STATUSES
            and not self.successes
        )
