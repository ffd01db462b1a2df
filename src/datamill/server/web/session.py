"""Web sessions: a signed cookie made at sign-in with an API key, and the CSRF token of each session.

The cookie holds a token, never the key: ``<payload>.<signature>``, where the payload (base64url JSON) names
the tenant, the id of the key that signed in, a random session id and the expiry time, and the signature is
an HMAC-SHA256 over the payload with a key derived from the server's signing secret. Every request checks
the signature, the expiry, that the session is still open on the server (`datamill.store.web_sessions`:
signing out closes it, so a copy of the cookie stops working at once) and that the key is still active, so
revoking a key ends its sessions too.

The cookie is HttpOnly, SameSite=Lax, Secure when the request came over https, and expires with the token
(`SESSION_TTL_S`). Each form and each script request carries a CSRF token, an HMAC of the session id, which
`WebSession.check_csrf` compares in constant time.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from datamill.server.context import ServerContext
from datamill.services.tenants import TenantView, hash_key
from datamill.store import tenants as tenants_repo
from datamill.store import web_sessions
from datamill.store.models import ApiKey

COOKIE = "datamill_session"
#: How long a session lasts, in seconds (12 hours).
SESSION_TTL_S = 12 * 3600
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """No valid session: the page redirects to the sign-in form (a script request gets a 401)."""


class CsrfRejected(Exception):
    """A state-changing request without the session's CSRF token."""


@dataclass(frozen=True)
class WebSession:
    """The signed-in tenant of a request and the session's CSRF token."""

    tenant: TenantView
    csrf_token: str
    session_id: str

    def check_csrf(self, sent: str | None) -> None:
        """Raise `CsrfRejected` unless `sent` is this session's token."""
        if not sent or not hmac.compare_digest(sent, self.csrf_token):
            raise CsrfRejected("missing or wrong CSRF token: reload the page and try again")


class SessionSigner:
    """Makes and reads session tokens with a key derived from the server secret."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"datamill web session", hashlib.sha256).digest()

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def csrf(self, session_id: str) -> str:
        return hmac.new(self._key, f"csrf\n{session_id}".encode(), hashlib.sha256).hexdigest()

    def make(
        self, tenant_id: str, key_id: str, now: float | None = None, session_id: str | None = None
    ) -> str:
        claims = {
            "t": tenant_id,
            "k": key_id,
            "s": session_id or secrets.token_urlsafe(16),
            "e": int((now or time.time()) + SESSION_TTL_S),
        }
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def read(self, token: str, now: float | None = None) -> dict[str, str | int] | None:
        """The claims of a token whose signature matches and that has not expired, else None."""
        payload, _, signature = token.partition(".")
        if not signature or not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(claims, dict) or not isinstance(claims.get("e"), int):
            return None
        return claims if claims["e"] > (now or time.time()) else None


def sign_in(context: ServerContext, signer: SessionSigner, key: str) -> str | None:
    """A session token for an active API key, or None for an unknown or revoked one."""
    tenant = context.tenants.authenticate(key.strip())
    if tenant is None:
        return None
    with context.store.session() as session:
        row = tenants_repo.active_key_by_hash(session, hash_key(key.strip()))
        if row is None:  # revoked between the two reads
            return None
        now = time.time()
        session_id = secrets.token_urlsafe(16)
        expires = dt.datetime.fromtimestamp(int(now + SESSION_TTL_S), dt.UTC)
        web_sessions.open_session(session, session_id, tenant.id, row.id, expires)
        return signer.make(tenant.id, row.id, now, session_id)


def current_session(request: Request, context: ServerContext, signer: SessionSigner) -> WebSession:
    """The request's session; raises `SignInRequired` without a valid one (or when its key was revoked)."""
    claims = signer.read(request.cookies.get(COOKIE, ""))
    if claims is None:
        raise SignInRequired()
    with context.store.session() as session:
        key = session.get(ApiKey, str(claims["k"]))
        if key is None or key.revoked_at is not None or key.tenant_id != claims["t"]:
            raise SignInRequired()
        if not web_sessions.is_open(session, str(claims["s"]), key.tenant_id):
            raise SignInRequired()
        tenant = tenants_repo.tenant_by_id(session, key.tenant_id)
        if tenant is None:
            raise SignInRequired()
        view = TenantView.of(tenant)
    return WebSession(view, signer.csrf(str(claims["s"])), str(claims["s"]))


def sign_out(context: ServerContext, web_session: WebSession) -> None:
    """Close the session on the server: its cookie, and every copy of it, stops working."""
    with context.store.session() as session:
        web_sessions.revoke(session, web_session.session_id)


def is_https(request: Request, context: ServerContext) -> bool:
    """Whether the browser reaches the server over https (directly, or through the configured public URL)."""
    return request.url.scheme == "https" or (context.settings.public_url or "").startswith("https://")


def set_cookie(response: Response, token: str, *, secure: bool) -> None:
    """Attach the session cookie (HttpOnly, SameSite=Lax, Secure over https, expiring with the token)."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def clear_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure)
