"""Resource vectors in integer units: ``cpu`` in millicores, everything else in whole units (bytes for memory and storage).

Resources are immutable mappings; missing names are zero. The packing engine turns them into fixed-length tuples for speed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .quantity import QuantityError, format_bytes, format_cpu, to_milli, to_units

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"
EPHEMERAL_STORAGE = "ephemeral-storage"
GPU = "nvidia.com/gpu"
NEURON = "aws.amazon.com/neuron"
NEURON_CORE = "aws.amazon.com/neuroncore"

#: The resources every plan reasons about, in the order the packing engine uses for its vectors.
CORE_RESOURCES: tuple[str, ...] = (CPU, MEMORY, GPU, NEURON, PODS)


def _to_int(name: str, value: Any) -> int:
    out = to_milli(value) if name == CPU else to_units(value)
    if out < 0:  # the API server's ValidateNonnegativeQuantity: requests, limits, capacity are never negative
        raise QuantityError(f"{value!r} must be greater than or equal to 0")
    return out


class Resources(Mapping[str, int]):
    """An immutable resource vector. ``Resources.parse({"cpu": "500m", "memory": "1Gi"})``."""

    __slots__ = ("_hash", "_values")

    def __init__(self, values: Mapping[str, int] | None = None) -> None:
        self._values: dict[str, int] = {k: v for k, v in (values or {}).items() if v}
        self._hash: int | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> Resources:
        """Parse a ``requests``/``limits``/``allocatable`` map of quantities. Raises QuantityError naming the resource."""
        out: dict[str, int] = {}
        for name, value in (raw or {}).items():
            try:
                out[str(name)] = _to_int(str(name), value)
            except QuantityError as exc:
                raise QuantityError(f"{name}: {exc}") from None
        return cls(out)

    def __getitem__(self, key: str) -> int:
        return self._values.get(key, 0)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._values.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Resources):
            return self._values == other._values
        if isinstance(other, Mapping):
            return self._values == {k: v for k, v in other.items() if v}
        return NotImplemented

    def __repr__(self) -> str:
        return f"Resources({self.format()})"

    def __add__(self, other: Mapping[str, int]) -> Resources:
        out = dict(self._values)
        for k, v in other.items():
            out[k] = out.get(k, 0) + v
        return Resources(out)

    def __sub__(self, other: Mapping[str, int]) -> Resources:
        out = dict(self._values)
        for k, v in other.items():
            out[k] = out.get(k, 0) - v
        return Resources(out)

    def scale(self, factor: int) -> Resources:
        return Resources({k: v * factor for k, v in self._values.items()})

    def max(self, other: Mapping[str, int]) -> Resources:
        """Element-wise maximum (used for init containers)."""
        out = dict(self._values)
        for k, v in other.items():
            out[k] = max(out.get(k, 0), v)
        return Resources(out)

    def fits(self, capacity: Mapping[str, int]) -> bool:
        """True when every requested amount is within ``capacity`` (names capacity lacks count as zero)."""
        return all(v <= capacity.get(k, 0) for k, v in self._values.items() if v > 0)

    def exceeding(self, capacity: Mapping[str, int]) -> list[str]:
        """Names of the resources that do not fit in ``capacity``."""
        return [k for k, v in self._values.items() if v > 0 and v > capacity.get(k, 0)]

    def as_dict(self) -> dict[str, int]:
        return dict(self._values)

    def format(self) -> str:
        """Readable: ``cpu=1500m, memory=4Gi, nvidia.com/gpu=1``."""
        parts = []
        for k in sorted(self._values, key=lambda n: (n not in CORE_RESOURCES, n)):
            v = self._values[k]
            if k == CPU:
                parts.append(f"{k}={format_cpu(v)}")
            elif k in (MEMORY, EPHEMERAL_STORAGE):
                parts.append(f"{k}={format_bytes(v)}")
            else:
                parts.append(f"{k}={v}")
        return ", ".join(parts)

    @staticmethod
    def sum(items: Iterable[Mapping[str, int]]) -> Resources:
        out: dict[str, int] = {}
        for item in items:
            for k, v in item.items():
                out[k] = out.get(k, 0) + v
        return Resources(out)


EMPTY = Resources()
