"""What the agent's work costs: token counts (stored per prompt, ``data/usage.py``) times the
model's prices. Pure, in exact decimals: a session's cost is exactly the sum of its steps' tokens
times the prices (no float rounding on the way).

Prices are US dollars per million tokens. ``DEFAULT_PRICES`` holds the common models' list prices
(December 2026); admins override or add models (``PUT /api/settings/prices``). Reasoning tokens are
billed as output. A model with no price counts tokens and costs nothing, and says so (``unpriced``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

MILLION = Decimal(1_000_000)
KINDS = ("input", "output", "cache_read", "cache_write")


@dataclass(frozen=True)
class Price:
    input: Decimal
    output: Decimal
    cache_read: Decimal = Decimal(0)
    cache_write: Decimal = Decimal(0)


def _p(inp: str, out: str, read: str = "0", write: str = "0") -> Price:
    return Price(Decimal(inp), Decimal(out), Decimal(read), Decimal(write))


DEFAULT_PRICES: dict[str, Price] = {
    "anthropic/claude-opus-4-5": _p("5", "25", "0.5", "6.25"),
    "anthropic/claude-opus-4-1": _p("15", "75", "1.5", "18.75"),
    "anthropic/claude-sonnet-4-5": _p("3", "15", "0.3", "3.75"),
    "anthropic/claude-sonnet-4": _p("3", "15", "0.3", "3.75"),
    "anthropic/claude-haiku-4-5": _p("1", "5", "0.1", "1.25"),
    "openai/gpt-5": _p("1.25", "10", "0.125"),
    "openai/gpt-5-mini": _p("0.25", "2", "0.025"),
    "openai/gpt-4.1": _p("2", "8", "0.5"),
    "openai/gpt-4o": _p("2.5", "10", "1.25"),
    "openai/o3": _p("2", "8", "0.5"),
}


@dataclass(frozen=True)
class Tokens:
    input: int = 0
    output: int = 0  # reasoning included
    cache_read: int = 0
    cache_write: int = 0

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(*(getattr(self, k) + getattr(other, k) for k in KINDS))


def tokens_of(step: Mapping[str, object]) -> Tokens:
    """A ``step_finish`` event's ``tokens`` as OpenCode reports them
    (``{"input", "output", "reasoning", "cache": {"read", "write"}}``); junk counts as zero."""

    def count(value: object) -> int:
        return value if isinstance(value, int) and value > 0 else 0

    cache = step.get("cache") if isinstance(step.get("cache"), Mapping) else {}
    assert isinstance(cache, Mapping)
    return Tokens(
        input=count(step.get("input")),
        output=count(step.get("output")) + count(step.get("reasoning")),
        cache_read=count(cache.get("read")),
        cache_write=count(cache.get("write")),
    )


def cost(tokens: Tokens, price: Price | None) -> Decimal:
    """Dollars, exact."""
    if price is None:
        return Decimal(0)
    return sum((Decimal(getattr(tokens, k)) * getattr(price, k) for k in KINDS), Decimal(0)) / MILLION


def price_table(overrides: Mapping[str, Mapping[str, object]]) -> dict[str, Price]:
    """The defaults with an admin's overrides (a model's whole price each)."""
    table = dict(DEFAULT_PRICES)
    for model, values in overrides.items():
        table[model] = Price(**{k: Decimal(str(values.get(k, 0))) for k in KINDS})
    return table


def total(rows: Iterable[tuple[str, Tokens]], prices: Mapping[str, Price]) -> tuple[Decimal, bool]:
    """The cost of (model, tokens) rows, and whether some model had no price."""
    spent, unpriced = Decimal(0), False
    for model, tokens in rows:
        price = prices.get(model)
        unpriced |= price is None and tokens != Tokens()
        spent += cost(tokens, price)
    return spent, unpriced


def exact(amount: Decimal) -> str:
    """The amount as plain decimal digits, every one kept ("0.000000", never "0E-6")."""
    return format(amount, "f")


def dollars(amount: Decimal) -> str:
    """For people: $0.0123 under a cent, else $12.34."""
    places = Decimal("0.0001") if amount and amount < Decimal("0.01") else Decimal("0.01")
    return f"${amount.quantize(places, rounding=ROUND_HALF_UP)}"
