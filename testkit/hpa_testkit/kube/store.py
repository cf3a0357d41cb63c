"""The Kubernetes emulator's object store: what kmock's in-memory emulator lacks and the autoscaler relies on.

Thread-safe (tests and the sandbox seed it directly while the HTTP server serves the official client), indexed by
resource so that a list of 10,000 pods does not scan every object, with uid / resourceVersion / creationTimestamp /
generation, optimistic concurrency, label and field selectors, paging, the status subresource, PodDisruptionBudget-aware
eviction, the Scale subresource and an event log for watches.
"""

from __future__ import annotations

import copy
import math
import random
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hyperpod_autoscaler.domain.k8s import LabelSelector


def _copy(value: Any) -> Any:
    """A deep copy of stored JSON data (dicts, lists, scalars): ``copy.deepcopy`` without its memo, several times faster;
    every list and watch event copies each object it returns."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    if kind is tuple:
        return tuple(_copy(v) for v in value)
    return value


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    status: bool = True
    """Whether the resource has a status subresource (writes to the main resource keep the stored status)."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


RESOURCES: list[ResourceType] = [
    ResourceType("", "v1", "pods", "Pod", True),
    ResourceType("", "v1", "nodes", "Node", False),
    ResourceType("", "v1", "namespaces", "Namespace", False),
    ResourceType("", "v1", "events", "Event", True, status=False),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, status=False),
    ResourceType("", "v1", "services", "Service", True),
    ResourceType("", "v1", "podtemplates", "PodTemplate", True, status=False),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, status=False),
    ResourceType("apps", "v1", "deployments", "Deployment", True),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", True),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", True),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True),
    ResourceType("batch", "v1", "jobs", "Job", True),
    ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True, status=False),
    ResourceType("karpenter.sh", "v1", "nodepools", "NodePool", False),
    ResourceType("karpenter.sh", "v1", "nodeclaims", "NodeClaim", False),
    ResourceType("karpenter.sagemaker.amazonaws.com", "v1", "hyperpodnodeclasses", "HyperpodNodeClass", False),
    ResourceType("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject", True),
    ResourceType("autoscaling.x-k8s.io", "v1", "provisioningrequests", "ProvisioningRequest", True),
]


class ApiError(Exception):
    """Rendered as a Kubernetes ``Status`` with this HTTP code and reason."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


def now_iso(epoch: float | None = None) -> str:
    moment = datetime.now(UTC) if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- selectors -----------------------------------------------------------------------------------------------------------

_SET_RE = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def label_matcher(text: str | None):  # type: ignore[no-untyped-def]
    """A label selector string (=, ==, !=, in, notin, key, !key) as a predicate on a labels dict."""
    if not text:
        return lambda labels: True
    tests = []
    for part in _split_selector(text):
        part = part.strip()
        m = _SET_RE.match(part)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                tests.append(lambda lb, k=key, vs=values: lb.get(k) in vs)
            else:
                tests.append(lambda lb, k=key, vs=values: lb.get(k) not in vs)
        elif "!=" in part:
            key, value = (s.strip() for s in part.split("!=", 1))
            tests.append(lambda lb, k=key, v=value: lb.get(k) != v)
        elif "=" in part:
            key, value = (s.strip() for s in part.replace("==", "=").split("=", 1))
            tests.append(lambda lb, k=key, v=value: lb.get(k) == v)
        elif part.startswith("!"):
            tests.append(lambda lb, k=part[1:].strip(): k not in lb)
        else:
            tests.append(lambda lb, k=part: k in lb)
        if not tests:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
    return lambda labels: all(t(labels) for t in tests)


FIELD_PATHS = {
    "metadata.name": ("metadata", "name"),
    "metadata.namespace": ("metadata", "namespace"),
    "spec.nodeName": ("spec", "nodeName"),
    "spec.unschedulable": ("spec", "unschedulable"),
    "status.phase": ("status", "phase"),
    "involvedObject.name": ("involvedObject", "name"),
    "involvedObject.kind": ("involvedObject", "kind"),
    "reason": ("reason",),
}


def _field(obj: dict[str, Any], path: tuple[str, ...]) -> str:
    cur: Any = obj
    for p in path:
        cur = cur.get(p) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_matcher(text: str | None):  # type: ignore[no-untyped-def]
    if not text:
        return lambda obj: True
    tests = []
    for part in _split_selector(text):
        part = part.strip()
        neg = "!=" in part
        key, value = (s.strip() for s in re.split(r"!=|==|=", part, maxsplit=1))
        path = FIELD_PATHS.get(key)
        if path is None:
            raise ApiError(400, "BadRequest", f'field label not supported: "{key}"')
        if neg:
            tests.append(lambda o, p=path, v=value: _field(o, p) != v)
        else:
            tests.append(lambda o, p=path, v=value: _field(o, p) == v)
    return lambda obj: all(t(obj) for t in tests)


# --- patching ------------------------------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 (also used for strategic-merge patches: lists are replaced, which is what our writers send)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = _pointer(op["path"])
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1] if parts else ""
        kind = op["op"]
        if kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op.get("value"):
                raise ApiError(422, "Invalid", f"test operation failed at {op['path']}")
        elif kind in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif kind == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                parent.pop(last, None)
        else:
            raise ApiError(422, "Invalid", f"unsupported json-patch op {kind}")
    return doc


# --- PDB arithmetic ------------------------------------------------------------------------------------------------------


def _pod_healthy(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conds = status.get("conditions") or []
    ready = [c for c in conds if c.get("type") == "Ready"]
    return not ready or ready[0].get("status") == "True"


def _scaled(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        frac = float(value[:-1]) / 100 * total
        return math.ceil(frac) if round_up else math.floor(frac)
    return int(value)


def pdb_allows(pdb: dict[str, Any], pods: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(disruptionsAllowed, currentHealthy, desiredHealthy) for a PDB over the pods its selector matches."""
    spec = pdb.get("spec") or {}
    expected = len(pods)
    healthy = sum(1 for p in pods if _pod_healthy(p))
    if spec.get("minAvailable") is not None:
        desired = _scaled(spec["minAvailable"], expected, round_up=True)
    elif spec.get("maxUnavailable") is not None:
        desired = expected - _scaled(spec["maxUnavailable"], expected, round_up=True)
    else:
        desired = expected
    return max(0, healthy - desired), healthy, desired


# --- the store -----------------------------------------------------------------------------------------------------------


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.types: dict[tuple[str, str], ResourceType] = {}
        self.by_kind: dict[tuple[str, str], ResourceType] = {}
        self.objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self.rv = 0
        self.log: list[tuple[int, tuple[str, str], str, dict[str, Any]]] = []
        self.changed = threading.Condition(self.lock)
        self.evictions: list[tuple[str, str]] = []
        self.pdb_violations: list[tuple[str, str]] = []
        self.now: Callable[[], float] | None = None
        """The cluster's clock for creationTimestamp (the sandbox's simulated one); None: the wall clock."""
        self.api_pod_deletes: list[tuple[str, str]] = []
        self.ids = random.Random(5)
        """Generated names and uids come from a seeded generator (under the lock): the same run, the same names."""
        """Pods deleted over HTTP (by a client: the autoscaler), apart from the sandbox's own direct deletes."""
        for t in RESOURCES:
            self.register(t)

    def register(self, t: ResourceType) -> None:
        with self.lock:
            self.types[(t.group, t.plural)] = t
            self.by_kind.setdefault((t.api_version, t.kind), t)
            self.objects.setdefault((t.group, t.plural), {})

    def type_of(self, group: str, plural: str) -> ResourceType:
        t = self.types.get((group, plural))
        if t is None:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({group}/{plural})")
        return t

    def type_for(self, api_version: str, kind: str) -> ResourceType:
        t = self.by_kind.get((api_version, kind))
        if t is None:
            raise ApiError(404, "NotFound", f"no resource for {api_version} {kind}")
        return t

    def reset(self) -> None:
        with self.lock:
            for bucket in self.objects.values():
                bucket.clear()
            self.log.clear()
            self.evictions.clear()
            self.pdb_violations.clear()
            self.api_pod_deletes.clear()

    def _bump(self, t: ResourceType, event: str, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.log.append((self.rv, (t.group, t.plural), event, _copy(obj)))
        if len(self.log) > 20000:
            del self.log[:10000]
        self.changed.notify_all()

    # --- CRUD ------------------------------------------------------------------------------------------------------------

    def create(self, t: ResourceType, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was not a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if meta.get("generateName"):
                with self.lock:
                    meta["name"] = meta["generateName"] + f"{self.ids.getrandbits(20):05x}"
            else:
                raise ApiError(422, "Invalid", f"{t.kind} is invalid: metadata.name: Required value: name is required")
        if t.namespaced:
            ns = namespace or meta.get("namespace") or "default"
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the object does not match the namespace of the URL")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
            ns = ""
        key = (ns, meta["name"])
        with self.lock:
            bucket = self.objects[(t.group, t.plural)]
            if key in bucket:
                raise ApiError(409, "AlreadyExists", f'{t.plural} "{meta["name"]}" already exists')
            meta["uid"] = str(uuid.UUID(int=self.ids.getrandbits(128), version=4))
            meta["creationTimestamp"] = now_iso(self.now() if self.now is not None else None)
            meta["generation"] = 1
            obj["apiVersion"] = t.api_version
            obj["kind"] = t.kind
            bucket[key] = obj
            self._bump(t, "ADDED", obj)
            return _copy(obj)

    def get(self, t: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        with self.lock:
            obj = self.objects[(t.group, t.plural)].get((namespace or "" if t.namespaced else "", name))
            if obj is None:
                raise ApiError(404, "NotFound", f'{t.plural} "{name}" not found')
            return _copy(obj)

    def _get_ref(self, t: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.objects[(t.group, t.plural)].get((namespace or "" if t.namespaced else "", name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{t.plural} "{name}" not found')
        return obj

    def list(
        self,
        t: ResourceType,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> dict[str, Any]:
        lmatch = label_matcher(label_selector)
        fmatch = field_matcher(field_selector)
        with self.lock:
            bucket = self.objects[(t.group, t.plural)]
            keys = sorted(bucket) if not namespace else sorted(k for k in bucket if k[0] == namespace)
            start = 0
            if continue_:
                try:
                    cont_ns, cont_name = continue_.split("/", 1)
                except ValueError:
                    raise ApiError(410, "Expired", "the provided continue parameter is not valid") from None
                import bisect

                start = bisect.bisect_right(keys, (cont_ns, cont_name))
            items: list[dict[str, Any]] = []
            next_token = None
            for i in range(start, len(keys)):
                obj = bucket[keys[i]]
                if not lmatch((obj.get("metadata") or {}).get("labels") or {}) or not fmatch(obj):
                    continue
                if limit and len(items) >= limit:
                    next_token = f"{items[-1]['metadata'].get('namespace', '')}/{items[-1]['metadata']['name']}"
                    break
                items.append(_copy(obj))
            meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
            if next_token:
                meta["continue"] = next_token
            return {"apiVersion": t.api_version, "kind": f"{t.kind}List", "metadata": meta, "items": items}

    def replace(
        self, t: ResourceType, namespace: str | None, name: str, body: dict[str, Any], subresource: str | None = None
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was not a JSON object")
        with self.lock:
            current = self._get_ref(t, namespace, name)
            sent_rv = (body.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {t.plural} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                )
            return self._write(t, current, copy.deepcopy(body), subresource)

    def patch(
        self,
        t: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        content_type: str,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            current = self._get_ref(t, namespace, name)
            if "json-patch" in content_type:
                if not isinstance(body, list):
                    raise ApiError(400, "BadRequest", "a json-patch body must be a list of operations")
                new = json_patch(current, body)
            else:
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "a merge patch body must be a JSON object")
                sent_rv = (body.get("metadata") or {}).get("resourceVersion")
                if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                    raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {t.plural} "{name}"')
                new = merge_patch(current, body)
            return self._write(t, current, new, subresource)

    def _write(
        self, t: ResourceType, current: dict[str, Any], new: dict[str, Any], subresource: str | None
    ) -> dict[str, Any]:
        meta = current["metadata"]
        if subresource == "status":
            updated = _copy(current)
            updated["status"] = new.get("status", {})
        else:
            updated = new
            if t.status and "status" in current:
                updated["status"] = _copy(current["status"])
            elif t.status:
                updated.pop("status", None)
            if new.get("spec") != current.get("spec"):
                updated.setdefault("metadata", {})["generation"] = int(meta.get("generation", 1)) + 1
        um = updated.setdefault("metadata", {})
        for k in ("uid", "creationTimestamp", "name", "namespace"):
            if k in meta:
                um[k] = meta[k]
        um.setdefault("generation", meta.get("generation", 1))
        updated["apiVersion"] = t.api_version
        updated["kind"] = t.kind
        current.clear()
        current.update(updated)
        self._bump(t, "MODIFIED", current)
        return _copy(current)

    def delete(self, t: ResourceType, namespace: str | None, name: str, *, scale_down: bool = False) -> dict[str, Any]:
        """Delete an object. A pod deleted while a PDB allows no disruption is recorded in ``pdb_violations``, unless
        ``scale_down``: a workload controller removing its own replicas, which PDBs do not govern."""
        with self.lock:
            bucket = self.objects[(t.group, t.plural)]
            key = (namespace or "" if t.namespaced else "", name)
            obj = bucket.get(key)
            if obj is None:
                raise ApiError(404, "NotFound", f'{t.plural} "{name}" not found')
            if t.plural == "pods" and t.group == "" and not scale_down and self._pdb_blocks(obj):
                self.pdb_violations.append(key)  # a plain delete that a PDB would have refused as an eviction
            bucket.pop(key)
            self._bump(t, "DELETED", obj)
            return _copy(obj)

    # --- subresources ----------------------------------------------------------------------------------------------------

    def _pdb_blocks(self, pod: dict[str, Any]) -> bool:
        """Whether taking this pod away now would leave one of its PDBs below its desired healthy count."""
        if not _pod_healthy(pod):
            return False
        meta = pod.get("metadata") or {}
        namespace, labels = meta.get("namespace") or "", meta.get("labels") or {}
        ns_pods = [p for (ns, _n), p in self.objects[("", "pods")].items() if ns == namespace]
        for (ns, _pn), pdb in self.objects[("policy", "poddisruptionbudgets")].items():
            if ns != namespace:
                continue
            selector = LabelSelector.model_validate((pdb.get("spec") or {}).get("selector") or {})
            if not selector.matches(labels):
                continue
            matching = [p for p in ns_pods if selector.matches((p.get("metadata") or {}).get("labels") or {})]
            allowed, _healthy, _desired = pdb_allows(pdb, matching)
            if allowed <= 0:
                return True
        return False

    def evict(self, namespace: str, name: str) -> dict[str, Any]:
        pods_t = self.type_of("", "pods")
        with self.lock:
            pod = self._get_ref(pods_t, namespace, name)
            if self._pdb_blocks(pod):
                raise ApiError(
                    429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget."
                )
            self.evictions.append((namespace, name))
            self.delete(pods_t, namespace, name)
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def bind(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        target = ((body or {}).get("target") or {}).get("name")
        if not target:
            raise ApiError(400, "BadRequest", "binding has no target.name")
        pods_t = self.type_of("", "pods")
        with self.lock:
            pod = self._get_ref(pods_t, namespace, name)
            if (pod.get("spec") or {}).get("nodeName"):
                raise ApiError(409, "Conflict", f'pod {name} is already assigned to node "{pod["spec"]["nodeName"]}"')
            pod.setdefault("spec", {})["nodeName"] = target
            self._bump(pods_t, "MODIFIED", pod)
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def get_scale(self, t: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            obj = self._get_ref(t, namespace, name)
            return _scale_of(obj)

    def set_scale(self, t: ResourceType, namespace: str, name: str, body: Any, content_type: str) -> dict[str, Any]:
        with self.lock:
            obj = self._get_ref(t, namespace, name)
            scale = _scale_of(obj)
            if "json-patch" in content_type:
                scale = json_patch(scale, body)
            elif isinstance(body, dict):
                sent_rv = (body.get("metadata") or {}).get("resourceVersion")
                if sent_rv and sent_rv != obj["metadata"]["resourceVersion"]:
                    raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {t.plural} "{name}"')
                scale = merge_patch(scale, body)
            replicas = (scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(422, "Invalid", "Scale.spec.replicas: must be a non-negative integer")
            if (obj.get("spec") or {}).get("replicas") != replicas:
                obj.setdefault("spec", {})["replicas"] = replicas
                obj["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1
                self._bump(t, "MODIFIED", obj)
            return _scale_of(obj)

    def events_since(self, t: ResourceType, rv: int, namespace: str | None) -> list[tuple[int, str, dict[str, Any]]]:
        with self.lock:
            out = []
            for ev_rv, key, kind, obj in self.log:
                if ev_rv <= rv or key != (t.group, t.plural):
                    continue
                if namespace and (obj.get("metadata") or {}).get("namespace") != namespace:
                    continue
                out.append((ev_rv, kind, obj))
            return out


def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": int((obj.get("spec") or {}).get("replicas", 1))},
        "status": {
            "replicas": int((obj.get("status") or {}).get("replicas", 0)),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
        },
    }
