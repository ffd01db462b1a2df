"""Bodies of the translate and localize endpoints (Adaption API).

``POST /datasets/{id}/translate`` takes ``{sample_rate, languages, estimate?, idempotency_key?}`` and
``POST /datasets/{id}/localize`` takes ``{sample_rate, pairs, estimate?, idempotency_key?}``. Both build a
`LanguageExpansion` with the same rules as a run's ``language_expansion``, so the field paths in issues are
top-level (``languages[1]``, ``pairs[0].country``, ``sample_rate``).

Translate also takes datamill's own ``translation_judge`` (a boolean, the run option of that name: the
judge checks each translation for changed details). Localize refuses it, naming the field: a localized row
changes numbers, names and units on purpose, so no detail check runs on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from datamill.core.expansion import ExpansionType, LanguageExpansion, read_expansion_targets
from datamill.core.fields import Issues, parse_with, read_bool, read_object
from datamill.core.job import read_idempotency_key

#: datamill's own field: the judge checks each translation for changed details.
JUDGE = "translation_judge"


@dataclass(frozen=True, slots=True)
class ExpandRequest:
    """A validated translate or localize request.

    Attributes:
        expansion: what to expand into, and how much.
        estimate: quote only, run nothing.
        idempotency_key: the same key returns the original launch response.
        translation_judge: the judge checks each translation for changed details (translate only).
    """

    expansion: LanguageExpansion
    estimate: bool = False
    idempotency_key: str | None = None
    translation_judge: bool = False

    def to_dict(self) -> dict[str, object]:
        """The wire body of the endpoint for this expansion's type (no ``type`` key)."""
        out = {k: v for k, v in self.expansion.to_dict().items() if k != "type"}
        out["estimate"] = self.estimate
        if self.idempotency_key is not None:
            out["idempotency_key"] = self.idempotency_key
        if self.translation_judge:
            out["translation_judge"] = True
        return out


def parse_translate_request(body: object) -> ExpandRequest:
    """Validate a translate body, or raise a `ValidationError` with every issue."""
    return parse_with(_ExpandReader(ExpansionType.TRANSLATE), body, "")


def parse_localize_request(body: object) -> ExpandRequest:
    """Validate a localize body, or raise a `ValidationError` with every issue."""
    return parse_with(_ExpandReader(ExpansionType.LOCALIZE), body, "")


class _ExpandReader:
    """A reader (see `core.fields`) bound to one endpoint's expansion type."""

    def __init__(self, kind: ExpansionType) -> None:
        self.kind = kind
        self.targets = "languages" if kind is ExpansionType.TRANSLATE else "pairs"

    def __call__(self, value: object, field: str, issues: Issues) -> ExpandRequest | None:
        before = len(issues)
        keys = ("sample_rate", self.targets, "estimate", "idempotency_key", JUDGE)
        obj = read_object(value, field, keys, issues)
        if obj is None:
            return None
        # Only this endpoint's keys go on; any others were reported as unknown just above.
        known = {k: obj[k] for k in ("sample_rate", self.targets) if k in obj}
        expansion = read_expansion_targets(known, field, self.kind, issues)
        estimate = read_bool(obj.get("estimate"), "estimate", issues)
        key = read_idempotency_key(obj.get("idempotency_key"), "idempotency_key", issues)
        judged = read_bool(obj.get(JUDGE), JUDGE, issues)
        if judged and self.kind is ExpansionType.LOCALIZE:
            issues.add(
                JUDGE,
                "only translations are checked for changed details: a localized row changes numbers, "
                "names and units on purpose; leave translation_judge out, or use translate",
            )
        if len(issues) > before or expansion is None:
            return None
        return ExpandRequest(expansion, bool(estimate), key, bool(judged))
