"""Signed links: the credential of a bare upload PUT and of a download GET, made by one signer.

The SDKs PUT uploaded bytes and GET downloads with no Authorization header, so a link carries its own proof:
a token made by itsdangerous' URL-safe serializer (HMAC-SHA256) over what the link grants (the upload id, or
the blob key, file name and content type) and its expiry time, keyed by the server secret with a salt per
purpose, so an upload token never verifies as a download token. A token that was altered, or made with
another secret or for another purpose, is refused with 403; so is one whose expiry time has passed. That an
upload link is used only once is enforced by the upload slot itself (`datamill.services.datasets.uploads`).

The secret is at least `MIN_SECRET_BYTES` bytes. It comes from the settings or, by default, from a file in
the data dir, created on first start by writing a temporary file and linking it into place, so a crash never
leaves an empty or partial secret behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from datamill.core.errors import ConfigError

#: The shortest secret the signer accepts.
MIN_SECRET_BYTES = 32
UPLOAD = "upload"
DOWNLOAD = "download"


class LinkInvalid(Exception):
    """The token was altered, made with another secret or for another purpose, or is not a token."""


class LinkExpired(Exception):
    """The token is genuine but its expiry time has passed."""


class LinkSigner:
    """Makes and checks the tokens of signed links; see the module docstring."""

    def __init__(self, secret: str) -> None:
        if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"the signing secret must be at least {MIN_SECRET_BYTES} bytes long: set "
                "DATAMILL_SIGNING_SECRET to a longer value, or unset it to use a generated one"
            )
        self._secret = secret

    def _serializer(self, purpose: str) -> URLSafeSerializer:
        return URLSafeSerializer(
            self._secret, salt=f"datamill.link.{purpose}", signer_kwargs={"digest_method": hashlib.sha256}
        )

    def sign(self, purpose: str, grant: dict[str, str], expires_at: dt.datetime) -> str:
        """A token that grants `grant` for `purpose` until `expires_at`."""
        return str(self._serializer(purpose).dumps({**grant, "exp": int(expires_at.timestamp())}))

    def verify(self, purpose: str, token: str, now: dt.datetime | None = None) -> dict[str, str]:
        """The grant of a genuine, unexpired token made for `purpose`.

        Raises:
            LinkInvalid: The token is not one this signer made for `purpose`.
            LinkExpired: The token is genuine but has expired.
        """
        try:
            fields: Any = self._serializer(purpose).loads(token)
        except BadData as exc:
            raise LinkInvalid(str(exc)) from None
        if not isinstance(fields, dict) or not isinstance(fields.get("exp"), int):
            raise LinkInvalid("the token holds no expiry time")
        moment = now or dt.datetime.now(dt.UTC)
        if fields["exp"] <= moment.timestamp():
            raise LinkExpired("the link has expired")
        return {key: str(value) for key, value in fields.items() if key != "exp"}


def load_or_create_secret(path: Path) -> str:
    """The secret kept in `path`, created (readable by the owner only) if the file does not exist yet.

    Raises:
        ConfigError: The file holds a secret shorter than `MIN_SECRET_BYTES`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _create_secret(path)
    secret = path.read_text(encoding="utf-8").strip()
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"the signing secret in {path} is shorter than {MIN_SECRET_BYTES} bytes: delete the file to have "
            "a new one made (links already handed out stop working), or set DATAMILL_SIGNING_SECRET"
        )
    return secret


def _create_secret(path: Path) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp makes it readable by the owner only
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile: keep theirs
            os.link(temporary, path)  # all at once: never an empty or partial secret
    finally:
        os.unlink(temporary)
