"""`tenancy serve --price TIER=AMOUNT` (and TENANCY_PRICES): amounts as the backend keeps them, or a clear
refusal naming the option; a negative price would make every plan show negative costs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tenancy_kinds.billing import parse_price_options


def test_prices_are_kept_as_amounts_of_two_decimals():
    assert parse_price_options(["entry=4", "pro= 8.5 "]) == {"entry": "4.00", "pro": "8.50"}


@pytest.mark.parametrize(("option", "why"), [
    ("entry=-1", "a price cannot be negative"),
    ("entry=abc", "is not a decimal amount"),
    ("entry=1.234", "at most two decimals"),
    ("entry", "use TIER=AMOUNT"),
])
def test_a_price_that_is_no_amount_is_refused_with_the_reason(option: str, why: str):
    with pytest.raises(ValueError, match=why):
        parse_price_options([option])


def test_serve_refuses_a_negative_price_naming_the_option(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "provider.cli", "serve", "--db", f"sqlite:///{tmp_path}/p.db", "--price", "entry=-1"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "--price" in result.stderr and "a price cannot be negative" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
