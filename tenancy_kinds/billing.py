"""Money and prices, shared by both halves: the monthly price per user subscription tier (the backend's
defaults, which a plan's costs use until the backend says its own), amounts, and `--price` options."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from tenancy_kinds.specs import Tier

CENT = Decimal("0.01")
DEFAULT_CURRENCY = "EUR"
DEFAULT_PRICES = {Tier.FREE.value: "0.00", Tier.ENTRY.value: "3.50", Tier.PRO.value: "7.50"}


def parse_amount(value: Any) -> Decimal:
    """A money amount as an exact Decimal with at most two decimals; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError("an amount is a decimal string such as \"50.00\"")  # one error type for callers
    try:
        amount = Decimal(str(value).strip())
        if not amount.is_finite() or amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
            raise ValueError(f"{str(value)[:40]!r} must be a finite amount with at most two decimals")
        return amount.quantize(CENT)
    except InvalidOperation:
        raise ValueError(f"{str(value)[:40]!r} is not a decimal amount such as \"50.00\"") from None


def money(amount: Decimal, currency: str = DEFAULT_CURRENCY) -> dict[str, str]:
    return {"amount": str(amount.quantize(CENT, rounding=ROUND_HALF_UP)), "currency": currency}


@dataclass(frozen=True)
class Prices:
    """Monthly price per user subscription tier."""

    subscriptions: Mapping[str, Decimal]
    currency: str = DEFAULT_CURRENCY

    @classmethod
    def of(cls, overrides: Mapping[str, Any] | None = None) -> Prices:
        """The default prices with `overrides` (tier → amount) applied; ValueError for an unknown tier."""
        values = dict(DEFAULT_PRICES)
        for tier, amount in (overrides or {}).items():
            if tier not in values:
                raise ValueError(f"unknown subscription tier {tier!r}; known: {', '.join(values)}")
            values[tier] = amount
        return cls({tier: parse_amount(amount) for tier, amount in values.items()})

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Prices:
        """Prices as the backend reports them (`as_dict`, `GET /v1/prices`)."""
        subscriptions = {tier: Decimal(str(price)) for tier, price in data["subscriptions"].items()}
        return cls(subscriptions, data.get("currency", DEFAULT_CURRENCY))

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "subscriptions": {tier: str(price) for tier, price in self.subscriptions.items()},
        }


def parse_price_options(options: Sequence[str]) -> dict[str, str]:
    """`["entry=4.00", "pro=8"]` (CLI `--price`, env `TENANCY_PRICES` split on commas) → overrides."""
    out = {}
    for option in options:
        tier, sep, amount = option.partition("=")
        if not sep or not tier.strip() or not amount.strip():
            raise ValueError(f"invalid price {option!r}: use TIER=AMOUNT, e.g. entry=4.00")
        try:
            price = parse_amount(amount.strip())
        except ValueError as e:
            raise ValueError(f"invalid price {option!r}: {e}") from None
        if price < 0:
            raise ValueError(f"invalid price {option!r}: a price cannot be negative")
        out[tier.strip()] = str(price)
    return out


__all__ = [
    "CENT",
    "DEFAULT_CURRENCY",
    "DEFAULT_PRICES",
    "Prices",
    "money",
    "parse_amount",
    "parse_price_options",
]
