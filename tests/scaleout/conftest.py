"""The scale-out tests share the server tests' helpers (PostgreSQL, S3, subprocesses) by bare module name."""

from __future__ import annotations

import sys
from pathlib import Path

_SERVER_HELPERS = str(Path(__file__).resolve().parent.parent / "server")
if _SERVER_HELPERS not in sys.path:
    sys.path.append(_SERVER_HELPERS)
