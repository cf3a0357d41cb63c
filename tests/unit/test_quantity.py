"""Quantity parsing against apimachinery's own tables (k8s.io/apimachinery pkg/api/resource/quantity_test.go,
TestQuantityParse): the valid inputs with their expected values, the invalid ones, and the bounds that keep a hostile
value from overflowing the packer or taking seconds to parse."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest
from hyperpod_autoscaler.domain.quantity import INT64_MAX, QuantityError, parse_quantity, to_milli, to_units
from hyperpod_autoscaler.domain.resources import Resources


def dec(mantissa: int, exponent: int) -> Fraction:
    """apimachinery's ``decQuantity(i, exponent, _)``: i * 10^exponent."""
    return Fraction(mantissa) * Fraction(10) ** exponent


# TestQuantityParse's table, input -> expected value (the Format column does not matter to a scheduler).
UPSTREAM_VALID = {
    "0": dec(0, 0),
    "0n": dec(0, 0),
    "0Ki": dec(0, 0),
    "1": dec(1, 0),
    "1Ki": dec(1024, 0),
    "7Mi": dec(7 * 1024 * 1024, 0),
    "3Ei": dec(3 * 1024**6, 0),
    "5n": dec(5, -9),
    "4u": dec(4, -6),
    "3m": dec(3, -3),
    "50k": dec(5, 4),
    "300T": dec(3, 14),
    "1E": dec(1, 18),
    "1E-3": dec(1, -3),
    "1e3": dec(1, 3),
    "1E18": dec(1, 18),
    "100.035k": dec(100035, 0),
    "0.0005k": dec(5, -1),
    "0.5e-2": dec(5, -3),
    "1.3E+6": dec(13, 5),
    "1.7E18": dec(17, 17),
    "6.987654321G": dec(6987654321, 0),
    "1.01E": dec(101, 16),
    "3.001n": dec(4, -9),
    "1.1E-9": dec(2, -9),
    "0.0000000001": dec(1, -9),
    "0.5e-9": dec(1, -9),
    "0.9n": dec(1, -9),
    "0.00000012345": dec(124, -9),
    "9Ei": Fraction(INT64_MAX),
    "9223372036854775807Ki": Fraction(INT64_MAX),
    "100.035Ki": dec(10243584, -2),
    "0.025Ti": dec(274877906944, -1),
    "0.000000000001Ki": dec(2, -9),
    ".001": dec(1, -3),
    ".0001k": dec(100, -3),
    "1.": dec(1, 0),
    "1.G": dec(1, 9),
}
UPSTREAM_INVALID = ["", "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-", "."]


@pytest.mark.parametrize(("text", "expected"), UPSTREAM_VALID.items(), ids=list(UPSTREAM_VALID))
def test_upstream_valid_quantities(text: str, expected: Fraction) -> None:
    assert parse_quantity(text) == expected
    assert parse_quantity("-" + text) == -expected
    assert parse_quantity("+" + text) == expected


@pytest.mark.parametrize("text", UPSTREAM_INVALID)
def test_upstream_invalid_quantities(text: str) -> None:
    with pytest.raises(QuantityError, match="is not a quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(
    "value",
    ["1e400", "1e10000000", "1e9223372036854775807", "12E", "9223372036854775808", 1e300, 2**64, "1" * 5000],
)
def test_absurd_values_are_rejected_fast(value: object) -> None:
    started = time.perf_counter()
    with pytest.raises(QuantityError, match=r"larger than the largest quantity|longer than 64"):
        parse_quantity(value)  # type: ignore[arg-type]
    assert time.perf_counter() - started < 0.01


def test_a_tiny_exponent_rounds_to_one_nano_fast() -> None:
    started = time.perf_counter()
    assert parse_quantity("1e-10000000") == dec(1, -9)
    assert time.perf_counter() - started < 0.01


def test_the_int64_edge() -> None:
    assert to_units("9223372036854775807") == INT64_MAX
    assert to_milli("9223372036854775807m") == INT64_MAX
    with pytest.raises(QuantityError, match="millicores"):
        to_milli("9223372036854776")  # 2^63-1 millicores is 9223372036854775.807 cores


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"cpu": "-1"}, "cpu: '-1' must be greater than or equal to 0"),
        ({"memory": "-1Gi"}, "memory: '-1Gi' must be greater than or equal to 0"),
        ({"memory": "1e400"}, "memory: '1e400' is larger than the largest quantity"),
        ({"nvidia.com/gpu": "two"}, "nvidia.com/gpu: 'two' is not a quantity"),
        ({"cpu": float("nan")}, "cpu: nan is not a quantity"),
    ],
)
def test_resource_maps_name_the_resource(raw: dict[str, object], message: str) -> None:
    with pytest.raises(QuantityError) as info:
        Resources.parse(raw)
    assert str(info.value).startswith(message), info.value
