"""Kubernetes quantities, parsed exactly."""

from fractions import Fraction

import pytest

from tandem.localcluster.quantities import QuantityError, millis, parse_integer_quantity, parse_quantity


@pytest.mark.parametrize(("text", "amount"), [
    ("500m", Fraction(1, 2)),
    ("2", Fraction(2)),
    ("0.1", Fraction(1, 10)),
    (".5", Fraction(1, 2)),
    ("+3", Fraction(3)),
    ("1.5k", Fraction(1500)),
    ("128Gi", Fraction(128 * 2**30)),
    ("64Ki", Fraction(65536)),
    ("1G", Fraction(10**9)),
    ("512M", Fraction(512 * 10**6)),
    ("1e3", Fraction(1000)),
    ("1E3", Fraction(1000)),
    ("25e-2", Fraction(1, 4)),
    ("1E", Fraction(10**18)),  # a lone E is the exa suffix, not an exponent
    ("100n", Fraction(1, 10**7)),
    ("5u", Fraction(5, 10**6)),
    (8, Fraction(8)),
    (0.25, Fraction(1, 4)),
])
def test_parses(text: str | int | float, amount: Fraction) -> None:
    assert parse_quantity(text) == amount


@pytest.mark.parametrize("text", ["", "m", "1.2.3", "12 Gi", "1Gb", "1e", "abc", "1ki", "--1"])
def test_refuses_malformed(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_booleans_are_not_quantities() -> None:
    with pytest.raises(QuantityError):
        parse_quantity(True)


def test_decimals_add_exactly() -> None:
    assert parse_quantity("0.1") + parse_quantity("0.2") == parse_quantity("300m")


def test_integer_quantities_for_devices() -> None:
    assert parse_integer_quantity("8") == 8
    assert parse_integer_quantity("2k") == 2000
    with pytest.raises(QuantityError):
        parse_integer_quantity("500m")


def test_millis_round_up() -> None:
    assert millis(parse_quantity("1.5")) == 1500
    assert millis(parse_quantity("100n")) == 1
