from __future__ import annotations

from decimal import Decimal

from inspect_app.control import costs


def test_tokens_are_read_as_opencode_reports_them_and_junk_counts_nothing() -> None:
    step = {"input": 10, "output": 5, "reasoning": 2, "cache": {"read": 3, "write": 1}}
    assert costs.tokens_of(step) == costs.Tokens(input=10, output=7, cache_read=3, cache_write=1)
    assert costs.tokens_of({"input": -4, "output": "9", "cache": "x", "reasoning": 1.5}) == costs.Tokens()


def test_costs_are_exact_decimals_and_an_unpriced_model_says_so() -> None:
    price = costs.Price(Decimal("3"), Decimal("15"), Decimal("0.3"), Decimal("3.75"))
    tokens = costs.Tokens(input=1_000_001, output=3, cache_read=7, cache_write=0)
    assert costs.cost(tokens, price) == Decimal("3.0000501")  # (3000003 + 45 + 2.1) / 10^6
    spent, unpriced = costs.total([("a/priced", tokens), ("a/unknown", costs.Tokens(input=5))], {"a/priced": price})
    assert (spent, unpriced) == (Decimal("3.0000501"), True)
    assert costs.total([("a/unknown", costs.Tokens())], {})[1] is False  # no tokens, nothing unpriced


def test_an_admins_price_replaces_the_default_and_adds_models() -> None:
    table = costs.price_table({"anthropic/claude-sonnet-4-5": {"input": 1, "output": 2}, "x/y": {"input": 0.5}})
    assert table["anthropic/claude-sonnet-4-5"] == costs.Price(Decimal("1"), Decimal("2"))
    assert table["x/y"].input == Decimal("0.5") and "openai/gpt-4o" in table


def test_amounts_read_well() -> None:
    assert costs.dollars(Decimal("0.00412")) == "$0.0041"
    assert costs.dollars(Decimal("12.345")) == "$12.35"  # half up, as money is rounded
    assert costs.dollars(Decimal(0)) == "$0.00"
