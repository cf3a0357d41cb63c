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
#: Kubernetes' grammar (``<signedNumber><suffix>``, apimachinery ``resource.ParseQuantity``): a number with optional sign
#: and fraction (``1.``, ``.5`` allowed), then a binary SI suffix, a decimal SI suffix or a decimal exponent ``e<int>``.
_QUANTITY = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?\d+))?")
_SI_EXPONENT = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

#: The largest quantity the scheduler can hold (an int64, as ``Quantity.Value()``/``MilliValue()`` return).
INT64_MAX = 2**63 - 1
#: Longer strings are rejected before any arithmetic: a legitimate quantity has at most 19 integer digits, 9 fraction
#: digits (Kubernetes keeps nano precision) and a short suffix, so this is far above anything real.
MAX_LENGTH = 64
_NANO = 10**9


class QuantityError(ValueError):
    """A string is not a Kubernetes quantity, or is one the scheduler cannot hold (negative, beyond int64)."""


_cache: dict[str, Fraction] = {}


def parse_quantity(value: str | int | float) -> Fraction:
    """Parse a quantity exactly, as Kubernetes does: finer than nano rounds away from zero to the nano (``0.9n`` -> 1n),
    binary SI caps at 2^63-1 (``9Ei``). A value beyond 2^63-1 is rejected (Kubernetes parses it, but its int64 accessors
    overflow on it), and so is any string longer than MAX_LENGTH, before any arithmetic: ``1e400`` and ``1e10000000``
    fail in microseconds. ``int`` and ``float`` are accepted as YAML and JSON give them (``cpu: 2``, ``cpu: 0.5``)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        if abs(value) > INT64_MAX:
            raise QuantityError(f"{value} is larger than the largest quantity, 2^63-1")
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"{value!r} is not a quantity")
        value = repr(value)  # '1e+300', '0.5': the grammar below
    cached = _cache.get(value)
    if cached is not None:
        return cached
    result = _parse_string(value)
    if len(_cache) < 65536:
        _cache[value] = result
    return result


def _parse_string(value: str) -> Fraction:
    text = value.strip()  # the wire path (Quantity.UnmarshalJSON) trims spaces
    if len(text) > MAX_LENGTH:
        raise QuantityError(f"{text[:20]!r}... is not a quantity (longer than {MAX_LENGTH} characters)")
    match = _QUANTITY.fullmatch(text)
    if not match or not (match.group(2) or match.group(3)):
        raise QuantityError(f"{value!r} is not a quantity (expected e.g. 100m, 1.5, 16Gi, 256M, 1e3)")
    sign, whole, fraction, suffix, exponent = match.groups()
    digits = (whole + (fraction or "")).lstrip("0")
    if not digits:
        return Fraction(0)
    mantissa = int(digits)
    if suffix in _BINARY:
        result = Fraction(mantissa * _BINARY[suffix], 10 ** len(fraction or ""))
        result = min(_round_nano(result), Fraction(INT64_MAX))  # apimachinery caps binary SI at 2^63-1
        return -result if sign == "-" else result
    scale = (int(exponent) if exponent is not None else _SI_EXPONENT[suffix or ""]) - len(fraction or "")
    # mantissa * 10^scale lies in [10^(len-1+scale), 10^(len+scale)): decide the extremes without computing them.
    if len(digits) - 1 + scale > 18:
        raise QuantityError(f"{value!r} is larger than the largest quantity, 2^63-1")
    if len(digits) + scale < -9:
        result = Fraction(1, _NANO)  # non-zero but finer than nano: Kubernetes rounds it up to 1n
    else:
        result = _round_nano(mantissa * Fraction(10) ** scale)
    if result > INT64_MAX:
        raise QuantityError(f"{value!r} is larger than the largest quantity, 2^63-1")
    return -result if sign == "-" else result


def _round_nano(value: Fraction) -> Fraction:
    """Round a non-negative value up to a whole number of nano units (apimachinery's ``Round(Nano, RoundUp)``)."""
    return Fraction(math.ceil(value * _NANO), _NANO)


def _checked(value: int, what: str, original: object) -> int:
    if value > INT64_MAX or value < -INT64_MAX:
        raise QuantityError(f"{original!r} is larger than the largest quantity in {what}, 2^63-1")
    return value


def to_milli(value: str | int | float) -> int:
    """Quantity in thousandths, rounded up (CPU millicores); like ``MilliValue()``, but rejecting what would overflow."""
    return _checked(math.ceil(parse_quantity(value) * 1000), "millicores", value)


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
