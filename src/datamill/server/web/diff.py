"""Word-level highlighting of what a run changed in a text, as escaped HTML (difflib on the server)."""

from __future__ import annotations

import difflib
import re

from markupsafe import Markup, escape

_TOKENS = re.compile(r"\s+|[^\s]+")


def _tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)


def highlight(before: str | None, after: str | None) -> tuple[Markup, Markup]:
    """``before`` with removed words in ``<del>``, ``after`` with added words in ``<ins>``."""
    old, new = _tokens(before or ""), _tokens(after or "")
    left: list[str] = []
    right: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        removed, added = escape("".join(old[i1:i2])), escape("".join(new[j1:j2]))
        if tag == "equal":
            left.append(removed)
            right.append(added)
            continue
        if i2 > i1:
            left.append(f"<del>{removed}</del>")
        if j2 > j1:
            right.append(f"<ins>{added}</ins>")
    return Markup("".join(left)), Markup("".join(right))
