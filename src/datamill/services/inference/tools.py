"""The tools ``/api/v1/tools`` lists: those the responses endpoint can run, with their availability.

Each entry has the wire's shape (``server_label``, ``type``, ``name``, ``description``, ``auth``, ``mode``,
``default_require_approval``, ``required_scope``, ``available``, ``unavailable_reason``). datamill runs no
MCP servers, so the list holds only the tools built into its responses endpoint: ``file_search``
(`datamill.services.inference.file_search`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ToolEntry:
    """One tool the server offers."""

    server_label: str
    type: str
    name: str
    description: str
    auth: str = "none"
    mode: str = "hosted_proxy"
    default_require_approval: str = "never"
    required_scope: str = "datasets:read"
    available: bool = True
    unavailable_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The tools the responses endpoint runs itself.
TOOLS: tuple[ToolEntry, ...] = (
    ToolEntry(
        server_label="datamill",
        type="file_search",
        name="file_search",
        description="Full-text search over the rows of your datasets; the best matches ground the answer.",
    ),
)


def list_tools() -> list[ToolEntry]:
    """The tools this server offers, in a stable order."""
    return list(TOOLS)
