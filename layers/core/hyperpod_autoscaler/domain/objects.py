"""Turning raw Kubernetes documents (from YAML files or the API) into typed objects.

Errors name the object and the field (``Pod default/web-1: field spec.containers[0].resources.requests: cpu: 'x' is not a
quantity``). In lenient mode a bad object is skipped and its error collected, so one bad object never stops the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .collector import cycle_collector_paused
from .documents import MAX_INPUT_CHARS, load_documents
from .errors import InvalidObject
from .gangs import PodTemplate, ProvisioningRequest
from .k8s import DaemonSet, Node, Pod, PodDisruptionBudget
from .karpenter import HyperpodNodeClass, NodePool
from .parsing import object_name, parse_as

#: (api group, kind) -> model. The core group is "".
MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("", "Pod"): Pod,
    ("", "Node"): Node,
    ("apps", "DaemonSet"): DaemonSet,
    ("policy", "PodDisruptionBudget"): PodDisruptionBudget,
    ("karpenter.sh", "NodePool"): NodePool,
    ("karpenter.sagemaker.amazonaws.com", "HyperpodNodeClass"): HyperpodNodeClass,
    ("autoscaling.x-k8s.io", "ProvisioningRequest"): ProvisioningRequest,
    ("", "PodTemplate"): PodTemplate,
}


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def parse_object(doc: Mapping[str, Any]) -> Any:
    """Parse one document by its apiVersion group and kind; raises InvalidObject for unknown kinds or bad fields."""
    if not isinstance(doc, Mapping):
        raise InvalidObject("document", "", "", f"is a {type(doc).__name__}, not a Kubernetes object")
    kind = doc.get("kind")
    api_version = doc.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        raise InvalidObject("object", object_name(doc), "kind", "required field is missing")
    if not isinstance(api_version, str) or not api_version:
        raise InvalidObject(kind, object_name(doc), "apiVersion", "required field is missing")
    model = MODELS.get((_group(api_version), kind))
    if model is None:
        raise InvalidObject(
            kind, object_name(doc), "apiVersion", f"{api_version} {kind} is not a kind the autoscaler reads"
        )
    if kind == "NodePool" and api_version != "karpenter.sh/v1":
        raise InvalidObject(
            kind, object_name(doc), "apiVersion", f"{api_version} is not supported; use karpenter.sh/v1"
        )
    return parse_as(model, doc, kind)


@dataclass
class ClusterObjects:
    """Everything a decision reads, typed. ``errors`` holds the objects skipped in lenient mode."""

    pods: list[Pod] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    daemonsets: list[DaemonSet] = field(default_factory=list)
    pdbs: list[PodDisruptionBudget] = field(default_factory=list)
    nodepools: list[NodePool] = field(default_factory=list)
    nodeclasses: list[HyperpodNodeClass] = field(default_factory=list)
    provisioning_requests: list[ProvisioningRequest] = field(default_factory=list)
    pod_templates: list[PodTemplate] = field(default_factory=list)
    errors: list[InvalidObject] = field(default_factory=list)

    def add(self, obj: Any) -> None:
        if isinstance(obj, Pod):
            self.pods.append(obj)
        elif isinstance(obj, Node):
            self.nodes.append(obj)
        elif isinstance(obj, DaemonSet):
            self.daemonsets.append(obj)
        elif isinstance(obj, PodDisruptionBudget):
            self.pdbs.append(obj)
        elif isinstance(obj, NodePool):
            self.nodepools.append(obj)
        elif isinstance(obj, HyperpodNodeClass):
            self.nodeclasses.append(obj)
        elif isinstance(obj, ProvisioningRequest):
            self.provisioning_requests.append(obj)
        elif isinstance(obj, PodTemplate):
            self.pod_templates.append(obj)
        else:
            raise TypeError(f"not a cluster object: {type(obj).__name__}")

    @property
    def pending_pods(self) -> list[Pod]:
        return [p for p in self.pods if p.is_pending]

    @property
    def bound_pods(self) -> list[Pod]:
        return [p for p in self.pods if p.spec.node_name and not p.is_terminal]


def flatten_documents(docs: Iterable[Any]) -> list[Any]:
    """Expand ``kind: List`` (and ``*List``) documents; drop empty YAML documents."""
    out: list[Any] = []
    for doc in docs:
        if doc is None:
            continue
        if (
            isinstance(doc, Mapping)
            and str(doc.get("kind", "")).endswith("List")
            and isinstance(doc.get("items"), list)
        ):
            out.extend(flatten_documents(doc["items"]))
        else:
            out.append(doc)
    return out


def load_yaml_documents(text: str, source: str = "<input>", max_chars: int = MAX_INPUT_CHARS) -> list[Any]:
    """The objects in a YAML or JSON text, ``List`` documents expanded; hostile input is refused (``documents``)."""
    return flatten_documents(load_documents(text, source, max_chars))


def parse_objects(docs: Iterable[Any], strict: bool = True, ignore_unknown_kinds: bool = False) -> ClusterObjects:
    """Parse documents into ClusterObjects. Strict: the first bad object raises. Lenient: it is skipped and recorded."""
    result = ClusterObjects()
    with cycle_collector_paused():  # thousands of validated models: a third of the time went to the collector
        for doc in flatten_documents(docs):
            if ignore_unknown_kinds and isinstance(doc, Mapping):
                key = (_group(str(doc.get("apiVersion", ""))), str(doc.get("kind", "")))
                if key not in MODELS:
                    continue
            try:
                result.add(parse_object(doc))
            except InvalidObject as exc:
                if strict:
                    raise
                result.errors.append(exc)
    return result
