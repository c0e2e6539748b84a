"""Kubernetes resource quantities ("500m", "2", "128Gi", "1G", "1e3"), parsed exactly (pure).

Values are `Fraction`s so that "0.1" + "0.2" cpu is exactly "300m" and a node's free capacity
never drifts through float rounding; callers compare and add them as numbers."""

from __future__ import annotations

import functools
import math
import re
from fractions import Fraction

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
            "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
            "P": Fraction(10**15), "E": Fraction(10**18)}
# An exponent needs digits after the e, so a lone "E" is the exa suffix, as in the API server.
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<exponent>[eE][+-]?[0-9]+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)


class QuantityError(ValueError):
    pass


@functools.lru_cache(maxsize=4096, typed=True)  # a cluster repeats a handful of quantities in every pod
def parse_quantity(value: str | int | float) -> Fraction:
    """The amount a quantity stands for: cpu in cores, memory in bytes, devices as counts."""
    if isinstance(value, bool):
        raise QuantityError(f"quantities must be numbers or strings, not {value!r}")
    if isinstance(value, int | float):
        return Fraction(value)
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise QuantityError(f"quantities must match the regular expression of the API server: {value!r}")
    number = Fraction(match["number"])
    if match["exponent"]:
        return number * Fraction(10) ** int(match["exponent"][1:])
    suffix = match["suffix"] or ""
    return number * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])


def parse_integer_quantity(value: str | int | float) -> int:
    """Extended resources (`huawei.com/Ascend910`, `nvidia.com/gpu`) are whole devices."""
    amount = parse_quantity(value)
    if amount.denominator != 1:
        raise QuantityError(f"must be an integer: {value!r}")
    return int(amount)


def millis(amount: Fraction) -> int:
    """Cpu in millicores, rounded up as the API server rounds sub-milli requests."""
    return math.ceil(amount * 1000)
