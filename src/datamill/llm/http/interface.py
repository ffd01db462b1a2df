"""What the providers need of an HTTP client: `Transport`, and the `HttpRequest` and `HttpReply` it handles.

`datamill.llm.http.transport.HttpTransport` is the real one; `datamill.llm.http.mock.MockTransport` answers
from a function, for tests of code that sits above the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson


@dataclass(slots=True)
class HttpReply:
    """A whole reply: status, headers (lower-cased names, repeated ones joined with ``", "``) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @classmethod
    def of_json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> HttpReply:
        """A reply whose body is ``payload`` as JSON."""
        merged = {"content-type": "application/json", **{k.lower(): v for k, v in (headers or {}).items()}}
        return cls(status, merged, orjson.dumps(payload))


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request as a transport received it: the caller's headers, not those the transport adds."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    timeout_s: float = 120.0
    proxy: str | None = None

    def json(self) -> Any:
        return orjson.loads(self.body)


class Transport(Protocol):
    """Sends JSON requests; what the providers are given. Implementations own their connections."""

    async def post_json(
        self,
        url: str,
        payload: Any,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float = 120.0,
        proxy: str | None = None,
    ) -> HttpReply:
        """POST ``payload`` as JSON to ``url`` and return the whole reply, whatever its status.

        ``proxy`` is the route's own proxy setting (None: the environment's rules; ``"none"``: direct).

        Raises:
            TransientError: a timeout, a dropped connection or a reply that is not valid HTTP.
            ConnectionConfigError: the endpoint cannot be reached as configured.
            PermanentModelError: a request that must not be sent (a header value with a line break).
        """
        ...

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 120.0,
        proxy: str | None = None,
    ) -> HttpReply:
        """Send any request (a GET, a file upload) and return the whole reply, whatever its status.

        Raises what `post_json` raises.
        """
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...
