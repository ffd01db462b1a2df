"""Credits: the multimodal rule at its edges, billable rows under language expansion, and the price table."""

from __future__ import annotations

import pytest

from datamill.core.credits import (
    MULTIMODAL_CREDITS_PER_BLOCK,
    PriceTable,
    billable_rows,
    multimodal_credits,
)
from datamill.core.errors import ConfigError
from datamill.core.expansion import parse_language_expansion


@pytest.mark.parametrize(
    ("rows", "credits"),
    [(0, 0), (1, 10), (99, 10), (100, 10), (101, 20), (200, 20), (201, 30), (1000, 100), (1001, 110)],
)
def test_multimodal_rule_is_ten_credits_per_started_hundred_rows(rows: int, credits: int) -> None:
    assert multimodal_credits(rows) == credits


def test_multimodal_rule_rejects_negative_rows() -> None:
    with pytest.raises(ValueError, match="negative"):
        multimodal_credits(-1)


def test_multimodal_pricing_replaces_the_text_price() -> None:
    table = PriceTable()
    assert table.credits(150, 1000.0, multimodal=True) == 20
    assert MULTIMODAL_CREDITS_PER_BLOCK == 10


def test_billable_rows_grow_with_language_expansion() -> None:
    translate = parse_language_expansion({"type": "translate", "languages": ["fr", "de"], "sample_rate": 0.5})
    assert billable_rows(100) == 100
    assert billable_rows(100, translate) == 200  # 100 × (1 + 0.5 × 2)
    localize = parse_language_expansion(
        {"type": "localize", "pairs": [{"country": "MX", "language": "es"}], "sample_rate": 0.5}
    )
    assert billable_rows(5, localize) == 8  # 7.5 rounds up, never down


def test_text_credits_default_table() -> None:
    table = PriceTable()
    assert table.text_credits(0, 0.0) == 0.0
    assert table.text_credits(10, 0.0) == 1.0  # 0.1 credits, lifted to the minimum
    assert table.text_credits(1000, 0.5) == 60.0  # 1000 × 0.01 + 0.5 USD × 100


def test_text_credits_round_up_to_a_hundredth_without_float_noise() -> None:
    table = PriceTable(credits_per_row=0.001, minimum_credits=0)
    assert table.text_credits(1, 0.0) == 0.01
    assert PriceTable(credits_per_row=0.1, minimum_credits=0).text_credits(3, 0.0) == 0.3


def test_text_credits_reject_negative_amounts() -> None:
    with pytest.raises(ValueError, match="negative"):
        PriceTable().text_credits(-1, 0.0)


def test_price_table_from_config_overrides_given_keys_only() -> None:
    table = PriceTable.from_mapping({"credits_per_usd": 50})
    assert table.credits_per_usd == 50
    assert table.credits_per_row == PriceTable().credits_per_row
    assert PriceTable.from_mapping(None) == PriceTable()
    assert table.to_dict()["credits_per_usd"] == 50


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"credit_per_row": 1}, "unknown key 'credit_per_row'"),
        ({"credits_per_row": -1}, "credits_per_row must not be negative"),
        ({"minimum_credits": "1"}, "minimum_credits must be a number"),
        ({"credits_per_usd": True}, "credits_per_usd must be a number"),
        ({"credits_per_usd": float("nan")}, "credits_per_usd must be a number"),
    ],
)
def test_price_table_config_errors_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        PriceTable.from_mapping(data, source="server.yaml: credits")
    assert str(info.value).startswith("server.yaml: credits: ")
