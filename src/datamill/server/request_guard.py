r"""Checks every request passes before a route reads it.

`RequestGuard` reads the body of every POST, PUT and PATCH before any route, key check included, sees it,
whatever its Content-Type says (a route that declares a body parses ``application/*+json`` with parameters,
or no Content-Type at all, as JSON, and reads any other body whole before its key is checked):
- a body over `MAX_JSON_BODY_BYTES` is refused with 413 as soon as that many bytes have arrived, so a large
  body costs neither memory nor a key lookup;
- a JSON string holding a lone UTF-16 surrogate (an unpaired ``\ud800`` escape: valid JSON, but text no
  database can store) is refused with 400 naming the field, instead of failing later inside the store.
The body is then handed on unchanged. Two kinds of body are streamed instead, their bytes counted as they
reach the route: an upload link's PUT (``/_uploads/...``, which checks its signature before it reads a byte
and caps the file at the upload limit itself) and a ``multipart/form-data`` form (seed files), capped at
`MAX_FORM_BODY_BYTES` (413 when its Content-Length says more, or once more has arrived).
Errors take the shape of the API the path belongs to.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datamill.core.errors import Issue
from datamill.server.errors import dataframer_error, error_response, is_dataframer_path
from datamill.server.uploads import UPLOAD_PATH
from datamill.services.generation.seed_rules import MAX_TOTAL_BYTES

#: The largest request body other than a file (uploads go through the upload link, not a JSON body).
MAX_JSON_BODY_BYTES = 16 * 1024 * 1024
#: The largest multipart form: the seed files' total limit and room for the form's own fields.
MAX_FORM_BODY_BYTES = MAX_TOTAL_BYTES + 2 * 1024 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# An escaped surrogate (\uD800-\uDFFF); a body without one cannot hold a lone surrogate, since raw UTF-8
# cannot encode one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class RequestGuard:
    """ASGI middleware: see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        max_json_bytes: int = MAX_JSON_BODY_BYTES,
        max_form_bytes: int = MAX_FORM_BODY_BYTES,
    ) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_form_bytes = max_form_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        if scope["method"] == "PUT" and path.startswith(UPLOAD_PATH + "/"):
            await self.app(scope, receive, send)  # the upload link streams and caps its file itself
            return
        if _is_form(scope):
            await self._stream_form(scope, receive, send, path)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_json_bytes:
                reason = f"the request body is larger than {self.max_json_bytes} bytes"
                await _refuse(path, 413, reason, None)(scope, receive, send)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        field = _lone_surrogate_field(body)
        if field is not None:
            reason = "holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), which is not text"
            await _refuse(path, 400, f"{field} {reason}", field)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _stream_form(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """Hand a multipart body on as it arrives; past the cap, answer 413 and end the route's body."""
        limit = self.max_form_bytes
        refusal = _refuse(path, 413, f"the request body is larger than {limit} bytes", None)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            await refusal(scope, receive, send)
            return
        size = 0
        refused = False

        async def counted() -> Message:
            nonlocal size, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            size += len(message.get("body", b""))
            if size > limit:
                refused = True
                await refusal(scope, receive, send)
                return {"type": "http.disconnect"}
            return message

        async def send_unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted, send_unless_refused)
        except Exception:
            if not refused:  # the route's own failure: the error handlers' business
                raise


def _is_form(scope: Scope) -> bool:
    media_type = Headers(scope=scope).get("content-type", "").partition(";")[0].strip().lower()
    return media_type == "multipart/form-data"


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the disconnect, when it comes

    return replay


def _lone_surrogate_field(body: bytes) -> str | None:
    """The dotted path of the first string (or key) holding a lone surrogate; None when there is none."""
    if not _SURROGATE_ESCAPE.search(body):
        return None
    try:
        document = json.loads(body)
    except ValueError:  # not JSON at all: the route answers that in its own words
        return None
    return _find(document, "body")


def _find(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if _has_surrogate(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _has_surrogate(key):
                return path
            found = _find(item, f"{path}.{key}" if path != "body" else key)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # only a surrogate code point cannot be encoded
        return True
    return False


def _refuse(path: str, status: int, message: str, field: str | None) -> ASGIApp:
    issues = [Issue(field, message)] if field else []
    if is_dataframer_path(path):
        return dataframer_error(status, message, issues=issues)
    return error_response(status, message, issues)
