"""The catalog of ml.* instance types: capacity, allocatable after system overhead, and price.

Built in from ``data/instance-types.csv`` (a copy of ``shared/reference/instance-types.csv``); a YAML file can override or
extend it by name (``--catalog``).

Overhead model (Karpenter's AWS defaults, so that a pod that fits our plan fits the real node):

- VM overhead: 7.5% of memory is not visible to the kubelet.
- kube-reserved CPU: 6% of the first core, 1% of the second, 0.5% of the third and fourth, 0.25% of every core above four.
- kube-reserved memory: 11 MiB per schedulable pod (``maxPods``) + 255 MiB.
- eviction threshold: 100 MiB of memory.
- ``maxPods`` defaults to 110 (the kubelet default); a catalog entry may set it.

Price: the SageMaker on-demand price per hour where the CSV lists one; otherwise the EC2 price times 1.25, the median ratio of
SageMaker to EC2 prices over the rows that list both (the entry is then marked ``price_estimated``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

from .documents import load_documents
from .errors import InvalidObject
from .resources import CPU, GPU, MEMORY, NEURON, PODS, Resources

GIB = 2**30
MIB = 2**20
DEFAULT_MAX_PODS = 110
VM_MEMORY_OVERHEAD = 0.075
EVICTION_THRESHOLD = 100 * MIB
SM_TO_EC2_PRICE_RATIO = 1.25
NVIDIA_ACCELERATORS = {"A10G", "L4", "L40S", "A100", "H100", "H200", "T4", "V100"}
NEURON_ACCELERATORS = {"Trainium", "Trainium2", "Inferentia", "Inferentia2"}


def kube_reserved_cpu_milli(vcpu: int) -> int:
    """Karpenter's AWS kube-reserved CPU in millicores."""
    reserved = 0.0
    for core in range(1, vcpu + 1):
        if core == 1:
            reserved += 60
        elif core == 2:
            reserved += 10
        elif core <= 4:
            reserved += 5
        else:
            reserved += 2.5
    return math.ceil(reserved)


@dataclass(frozen=True, slots=True)
class InstanceType:
    name: str
    vcpu: int
    memory_gib: float
    price: float
    gpus: int = 0
    neuron_devices: int = 0
    accelerator: str = ""
    accelerator_memory_gb: float = 0
    max_pods: int = DEFAULT_MAX_PODS
    price_estimated: bool = False
    arch: str = "amd64"
    capacity: Resources = field(default_factory=Resources, compare=False)
    allocatable: Resources = field(default_factory=Resources, compare=False)

    @staticmethod
    def build(
        name: str,
        vcpu: int,
        memory_gib: float,
        price: float,
        gpus: int = 0,
        neuron_devices: int = 0,
        accelerator: str = "",
        accelerator_memory_gb: float = 0,
        max_pods: int = DEFAULT_MAX_PODS,
        price_estimated: bool = False,
    ) -> InstanceType:
        memory = int(memory_gib * GIB)
        capacity = Resources({CPU: vcpu * 1000, MEMORY: memory, GPU: gpus, NEURON: neuron_devices, PODS: max_pods})
        visible = int(memory * (1 - VM_MEMORY_OVERHEAD))
        kube_reserved_memory = 11 * MIB * max_pods + 255 * MIB
        allocatable = Resources(
            {
                CPU: vcpu * 1000 - kube_reserved_cpu_milli(vcpu),
                MEMORY: max(0, visible - kube_reserved_memory - EVICTION_THRESHOLD),
                GPU: gpus,
                NEURON: neuron_devices,
                PODS: max_pods,
            }
        )
        return InstanceType(
            name=name,
            vcpu=vcpu,
            memory_gib=memory_gib,
            price=price,
            gpus=gpus,
            neuron_devices=neuron_devices,
            accelerator=accelerator,
            accelerator_memory_gb=accelerator_memory_gb,
            max_pods=max_pods,
            price_estimated=price_estimated,
            capacity=capacity,
            allocatable=allocatable,
        )

    def with_changes(self, **changes: Any) -> InstanceType:
        base = replace(self, **changes)
        return InstanceType.build(
            base.name,
            base.vcpu,
            base.memory_gib,
            base.price,
            base.gpus,
            base.neuron_devices,
            base.accelerator,
            base.accelerator_memory_gb,
            base.max_pods,
            base.price_estimated,
        )


class Catalog(Mapping[str, InstanceType]):
    """Instance types by name."""

    def __init__(self, types: Mapping[str, InstanceType]) -> None:
        self._types = dict(types)

    def __getitem__(self, name: str) -> InstanceType:
        return self._types[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    @classmethod
    def from_csv(cls, text: str) -> Catalog:
        rows = csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#"))
        types: dict[str, InstanceType] = {}
        for row in rows:
            name = row["type"]
            sm_price = row.get("sm_price") or ""
            ec2_price = row.get("ec2_price") or ""
            if sm_price:
                price, estimated = float(sm_price), False
            elif ec2_price:
                price, estimated = round(float(ec2_price) * SM_TO_EC2_PRICE_RATIO, 4), True
            else:
                raise InvalidObject("InstanceType", name, "price", "neither sm_price nor ec2_price is given")
            accelerator = row.get("accelerator") or ""
            count = int(row.get("accelerator_count") or 0)
            types[name] = InstanceType.build(
                name=name,
                vcpu=int(row["vcpu"]),
                memory_gib=float(row["memory_gib"]),
                price=price,
                gpus=count if accelerator in NVIDIA_ACCELERATORS else 0,
                neuron_devices=count if accelerator in NEURON_ACCELERATORS else 0,
                accelerator=accelerator,
                accelerator_memory_gb=float(row.get("accelerator_memory_gb") or 0),
                price_estimated=estimated,
            )
        return cls(types)

    @classmethod
    def builtin(cls) -> Catalog:
        global _BUILTIN
        if _BUILTIN is None:
            text = importlib_resources.files("hyperpod_autoscaler").joinpath("data/instance-types.csv").read_text()
            _BUILTIN = cls.from_csv(text)
        return _BUILTIN

    def with_overrides(self, document: Mapping[str, Any], source: str = "catalog") -> Catalog:
        """Apply a ``{instanceTypes: [{name, vcpu, memoryGiB, gpus, neuronDevices, pricePerHour, maxPods}]}`` document.

        An entry for a known name changes only the fields it gives; an entry for a new name must give vcpu, memoryGiB and
        pricePerHour."""
        entries = document.get("instanceTypes") if isinstance(document, Mapping) else None
        if not isinstance(entries, list):
            raise InvalidObject("Catalog", source, "instanceTypes", "must be a list of instance types")
        fields = {
            "vcpu": ("vcpu", int),
            "memoryGiB": ("memory_gib", float),
            "gpus": ("gpus", int),
            "neuronDevices": ("neuron_devices", int),
            "pricePerHour": ("price", float),
            "maxPods": ("max_pods", int),
            "accelerator": ("accelerator", str),
        }
        types = dict(self._types)
        for index, entry in enumerate(entries):
            where = f"instanceTypes[{index}]"
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str) or not entry["name"]:
                raise InvalidObject("Catalog", source, f"{where}.name", "every entry needs a name")
            name = entry["name"]
            changes: dict[str, Any] = {}
            for key, value in entry.items():
                if key == "name":
                    continue
                if key not in fields:
                    raise InvalidObject("Catalog", source, f"{where}.{key}", f"unknown field (known: {sorted(fields)})")
                attr, kind = fields[key]
                try:
                    converted = kind(value)
                except (TypeError, ValueError):
                    raise InvalidObject(
                        "Catalog", source, f"{where}.{key}", f"{value!r} is not a {kind.__name__}"
                    ) from None
                if kind in (int, float) and converted < 0:
                    raise InvalidObject("Catalog", source, f"{where}.{key}", "must not be negative")
                changes[attr] = converted
            if "price" in changes:
                changes["price_estimated"] = False
            if name in types:
                types[name] = types[name].with_changes(**changes)
            else:
                missing = [k for k in ("vcpu", "memoryGiB", "pricePerHour") if fields[k][0] not in changes]
                if missing:
                    raise InvalidObject("Catalog", source, f"{where}.{missing[0]}", f"required for new type {name}")
                types[name] = InstanceType.build(name=name, **changes)
        return Catalog(types)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Catalog:
        """The built-in catalog, with the overrides of ``path`` when given."""
        catalog = cls.builtin()
        if path is None:
            return catalog
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidObject("Catalog", str(path), "", f"cannot be read: {exc}") from None
        documents = load_documents(text, str(path))
        if len(documents) > 1:
            raise InvalidObject("Catalog", str(path), "", f"holds {len(documents)} YAML documents; expected one")
        return catalog.with_overrides(documents[0] if documents and documents[0] else {}, source=str(path))


_BUILTIN: Catalog | None = None
