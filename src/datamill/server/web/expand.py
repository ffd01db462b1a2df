"""Translate or localize a dataset from its page: a new dataset with a sample of the rows rewritten.

The form sends the languages (``es, fr``) or the country:language pairs (``MX:es, FR:fr``) as typed; they
are split here into the API's lists, then checked by the API's own parsers (``parse_translate_request``,
``parse_localize_request``: the same rules and messages, each issue naming its field) and launched by the
same service as ``POST /api/v1/datasets/{id}/translate`` and ``/localize``. The answer leads to the new
dataset's run page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from datamill.core.errors import ValidationError
from datamill.core.expand_request import parse_localize_request, parse_translate_request
from datamill.server.web.deps import PostSession, WebDep

router = APIRouter()

KINDS = ("translate", "localize")


def _split(value: object) -> object:
    """A comma-separated text as its list of parts; anything else as it is (the parser names it)."""
    return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value


def _pair(text: str) -> object:
    country, colon, language = text.partition(":")
    return {"country": country.strip(), "language": language.strip()} if colon else text


def wire_body(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The endpoint and the API body of the form's fields."""
    kind = body.get("type")
    if kind not in KINDS:
        raise ValidationError.of("type", f"must be one of {', '.join(KINDS)}")
    wire: dict[str, Any] = {}
    if body.get("sample_rate") is not None:
        wire["sample_rate"] = body["sample_rate"]
    if kind == "translate":
        wire["languages"] = _split(body.get("languages", ""))
    else:
        pairs = _split(body.get("pairs", ""))
        wire["pairs"] = [_pair(p) for p in pairs] if isinstance(pairs, list) else pairs
    return kind, wire


@router.post("/datasets/{dataset_id}/expand", status_code=201)
def expand(
    dataset_id: str, web: WebDep, session: PostSession, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Launch a translate or localize run of the dataset; where to watch the new dataset."""
    kind, wire = wire_body(body)
    request = parse_translate_request(wire) if kind == "translate" else parse_localize_request(wire)
    made = web.context.runs.expand.expand(session.tenant.id, dataset_id, kind, request)
    return {"dataset_id": made.dataset_id, "url": f"/datasets/{made.dataset_id}/run"}
