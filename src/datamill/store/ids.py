"""Identifiers: a short type prefix and 96 random bits (``ds_3f9c...``), unguessable and URL-safe."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """A fresh id such as ``ds_0b1c2d3e4f5a6b7c8d9e0f1a``."""
    return f"{prefix}_{secrets.token_hex(12)}"
