"""Kubernetes resource quantities with the API server's exact rules.

A quantity is ``<signed-number><suffix>`` where the suffix is a binary SI suffix (Ki, Mi, Gi, Ti, Pi, Ei), a decimal SI suffix
(n, u, m, "", k, M, G, T, P, E) or a decimal exponent (e3, E-2). Values are kept exact (``Fraction``) and converted to integers
only at the edge: CPU in millicores, everything else in whole units, always rounding up, as the scheduler does.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?\d+))?$")


class QuantityError(ValueError):
    """A string is not a Kubernetes quantity."""


_cache: dict[str, Fraction] = {}


def parse_quantity(value: str | int | float) -> Fraction:
    """Parse a quantity exactly. ``int`` and ``float`` are accepted as YAML gives them (``cpu: 2``, ``cpu: 0.5``)."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"{value!r} is not a quantity")
        return Fraction(str(value))
    if not isinstance(value, str):
        raise QuantityError(f"{value!r} is not a quantity")
    cached = _cache.get(value)
    if cached is not None:
        return cached
    match = _QUANTITY.match(value.strip())
    if not match:
        raise QuantityError(f"{value!r} is not a quantity (expected e.g. 100m, 1.5, 16Gi, 256M, 1e3)")
    number, suffix, exponent = match.groups()
    result = Fraction(number)
    if exponent is not None:
        result *= Fraction(10) ** int(exponent)
    elif suffix in _BINARY:
        result *= _BINARY[suffix]
    else:
        result *= _DECIMAL[suffix or ""]
    if len(_cache) < 65536:
        _cache[value] = result
    return result


def to_milli(value: str | int | float) -> int:
    """Quantity in thousandths, rounded up (CPU millicores)."""
    return math.ceil(parse_quantity(value) * 1000)


def to_units(value: str | int | float) -> int:
    """Quantity in whole units, rounded up (bytes, GPUs, pods)."""
    return math.ceil(parse_quantity(value))


def format_cpu(milli: int) -> str:
    """Millicores as a quantity string (``1500m`` -> ``1500m``, ``2000`` -> ``2``)."""
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def format_bytes(value: int) -> str:
    """Bytes as the largest exact binary quantity (``17179869184`` -> ``16Gi``)."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = _BINARY[suffix]
        if value and value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)
