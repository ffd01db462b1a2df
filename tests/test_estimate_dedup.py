"""The quote predicts what dedup removes: the dedup steps run on up to `DEDUP_SAMPLE_ROWS` rows, not on the
50 rows the prompts are rendered for, so a file with many duplicates spread through it is quoted close to
what the run delivers; on a larger file the note says the rate is a lower bound and gives its interval."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import datamill
from datamill.pipelines import estimate as estimate_module
from datamill.services.settings.entry import Settings

WORDS = [
    "router",
    "invoice",
    "password",
    "account",
    "billing",
    "refund",
    "network",
    "modem",
    "light",
    "email",
    "change",
    "reset",
    "cancel",
    "plan",
    "upgrade",
    "parcel",
    "delivery",
    "tracking",
    "address",
    "payment",
    "card",
    "screen",
    "login",
    "app",
    "update",
]


def _tickets(rows: int, seed: int = 4) -> list[dict[str, str]]:
    """Support tickets of which about a third repeat another one (exactly, or with a word more), the
    repeats anywhere in the file, as in an export of a ticket queue."""
    chance = random.Random(seed)
    tickets: list[dict[str, str]] = []
    for index in range(rows):
        if tickets and chance.random() < 0.35:
            earlier = chance.choice(tickets)["question"]
            question = earlier if chance.random() < 0.5 else earlier + " please"
        else:
            question = " ".join(chance.choice(WORDS) for _ in range(14)) + f" ticket {index}"
        tickets.append({"question": question, "answer": "See the help centre."})
    chance.shuffle(tickets)
    return tickets


def _kwargs(tmp_path: Path) -> dict[str, object]:
    return {
        "prompt": "question",
        "completion": "answer",
        "recipes": ["deduplication"],
        "model": "fake/test-model",
        "settings": Settings.from_env({"DATAMILL_HOME": str(tmp_path / "home")}),
    }


def test_the_quote_of_3000_tickets_predicts_the_rows_dedup_leaves(tmp_path: Path) -> None:
    tickets = _tickets(3000)
    quote = datamill.estimate(tickets, **_kwargs(tmp_path)).to_dict()
    result = datamill.adapt(tickets, evaluate=False, **_kwargs(tmp_path))

    assert result.summary is not None
    actual = result.summary.rows_out
    assert actual < 2400  # the file is heavy with duplicates
    assert abs(quote["rows_out"] - actual) <= 0.15 * actual
    assert any("whole input" in note for note in quote["notes"])


def test_on_a_larger_file_the_note_says_the_rate_is_a_lower_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(estimate_module, "DEDUP_SAMPLE_ROWS", 400)
    monkeypatch.setattr("datamill.services.adaptation.prepare.DEDUP_SAMPLE_ROWS", 400)
    quote = datamill.estimate(_tickets(1200), **_kwargs(tmp_path)).to_dict()
    (note,) = [n for n in quote["notes"] if n.startswith("deduplication:")]
    assert "of the first 400 rows" in note
    assert "95% interval" in note
    assert "more rows may be dropped" in note
    assert quote["rows_out"] < 1200
