"""The cluster port on the official ``kubernetes`` client.

Only the client's transport is used (``ApiClient.call_api`` with ``_preload_content=False``): responses are decoded as
plain JSON and parsed by the core's models, which is several times faster than the client's generated models at 10,000
pods and imports less. Reads use server-side field and label selectors and ``limit``/``continue`` paging; ``snapshot``
reads nodes before pods, so that a race leans toward under-provisioning (the next pass fixes it). Malformed objects are
skipped into ``ClusterObjects.errors`` and logged with their name; they never stop the others. Writes are idempotent and
retried on 409 conflicts with a fresh read.

Every call has a request timeout (connect, read): the client's default is none, and one hung call would hold a task until
its function times out. An API error leaves the adapter under the project's name (``adapters.errors``: 429 ``Throttled``,
5xx/410/timeouts ``Unavailable``, 403 ``AccessDenied``...), so that Step Functions retries the transient ones.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from ..domain.errors import (
    AccessDenied,
    AutoscalerError,
    ClusterBusy,
    InvalidObject,
    InvalidRequest,
    NotFound,
    Throttled,
    Unavailable,
)
from ..domain.k8s import DISRUPTED_TAINT_KEY, Node, Pod, Taint
from ..domain.objects import ClusterObjects, parse_object
from ..ports.cluster import EvictionResult, ObjectRef
from .errors import from_kube_status

log = logging.getLogger(__name__)

PAGE = 500
CONFLICT_RETRIES = 5
EVENT_SOURCE = "hyperpod-autoscaler"

NODEPOOLS = ("karpenter.sh", "v1", "nodepools")
NODECLASSES = ("karpenter.sagemaker.amazonaws.com", "v1", "hyperpodnodeclasses")
PROVISIONING_REQUESTS = ("autoscaling.x-k8s.io", "v1", "provisioningrequests")
SCALEDOBJECTS = ("keda.sh", "v1alpha1", "scaledobjects")
SCALE_KINDS = {"Deployment": "deployments", "StatefulSet": "statefulsets"}


REQUEST_TIMEOUT = (3.0, 15.0)
"""(connect, read) seconds for every call: a page of 500 pods reads in well under a second."""


class KubeApiError(Exception):
    """The adapter's view of a failed call: the status decides what a method does (404 on a read is "absent", 409 on a
    write is "read again"). What leaves the adapter is one of ``_ERRORS``: also a ``KubeApiError``, and named as the
    project's error type (the name Step Functions matches)."""

    def __init__(self, status: int, reason: str, body: str) -> None:
        super().__init__(f"Kubernetes API {status} {reason}: {body[:300]}")
        self.status = status
        self.reason = reason
        self.body = body


_ERRORS: dict[type[AutoscalerError], type[KubeApiError]] = {
    cls: type(cls.__name__, (cls, KubeApiError), {"__module__": __name__})
    for cls in (Throttled, ClusterBusy, NotFound, AccessDenied, Unavailable, InvalidRequest)
}


def kube_error(status: int, reason: str, body: str) -> KubeApiError:
    """A Kubernetes API failure (status 0: no answer) as the project's error type for that status."""
    return _ERRORS[from_kube_status(status)](status, reason, body)


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeCluster:
    """ClusterPort (``ports.cluster``) against a Kubernetes API server."""

    def __init__(
        self,
        api_client: Any,
        request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.api = api_client
        self.request_timeout = request_timeout
        self.now = now
        """The clock of event and condition times and of the events' one-minute de-duplication (the runtime's: wall
        time in AWS, the cluster clock in the sandbox)."""
        self._events_sent: dict[tuple[str, str, str, str], float] = {}

    # --- construction ----------------------------------------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(
        cls, path: str, context: str | None = None, now: Callable[[], float] = time.time
    ) -> KubeCluster:
        from kubernetes.client.api_client import ApiClient
        from kubernetes.client.configuration import Configuration
        from kubernetes.config.kube_config import load_kube_config

        cfg = Configuration()
        load_kube_config(config_file=path, context=context, client_configuration=cfg)
        cfg.retries = 0  # urllib3 would retry a timed-out read 3 times, unseen: one attempt, the callers retry
        return cls(ApiClient(cfg), now=now)

    @classmethod
    def from_eks(
        cls, cluster_name: str, region: str, session: Any = None, now: Callable[[], float] = time.time
    ) -> KubeCluster:
        """Endpoint and CA from ``eks:DescribeCluster``; a bearer token from a presigned STS URL, renewed before expiry."""
        import base64

        import boto3
        from kubernetes.client.api_client import ApiClient
        from kubernetes.client.configuration import Configuration

        from .eks_auth import EksTokenSource

        session = session or boto3.session.Session(region_name=region)
        described = session.client("eks", region_name=region).describe_cluster(name=cluster_name)["cluster"]
        ca = tempfile.NamedTemporaryFile("wb", prefix="eks-ca-", suffix=".crt", delete=False)  # noqa: SIM115
        with ca:
            ca.write(base64.b64decode(described["certificateAuthority"]["data"]))
        tokens = EksTokenSource(cluster_name, region, session)
        cfg = Configuration()
        cfg.host = described["endpoint"]
        cfg.ssl_ca_cert = ca.name
        cfg.api_key_prefix = {"authorization": "Bearer"}
        cfg.api_key = {"authorization": tokens.token()}

        def refresh(c: Any) -> None:
            c.api_key["authorization"] = tokens.token()

        cfg.refresh_api_key_hook = refresh
        cfg.retries = 0
        return cls(ApiClient(cfg), now=now)

    # --- transport -------------------------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            resp = self.api.call_api(
                path,
                method,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=self.request_timeout,
            )
            data = resp.data
        except ApiException as exc:
            raise kube_error(int(exc.status or 0), str(exc.reason), str(exc.body or "")) from None
        except (HTTPError, OSError) as exc:  # refused, reset, timed out: no answer at all
            raise kube_error(0, type(exc).__name__, f"{method} {path}: {exc}") from None
        try:
            return json.loads(data) if data else None
        except ValueError as exc:
            raise kube_error(0, "BadResponse", f"{method} {path}: not JSON: {exc}") from None

    def _paged(self, path: str, query: list[tuple[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            q = [*(query or []), ("limit", PAGE)]
            if token:
                q.append(("continue", token))
            page = self._call("GET", path, q)
            yield from page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    @staticmethod
    def _custom_path(
        group: str, version: str, plural: str, name: str | None = None, namespace: str | None = None
    ) -> str:
        base = f"/apis/{group}/{version}"
        if namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{plural}"
        return f"{base}/{name}" if name else base

    # --- reads -----------------------------------------------------------------------------------------------------------

    def _parse_into(self, objects: ClusterObjects, raw: dict[str, Any], what: str) -> Any:
        try:
            obj = parse_object(raw)
        except InvalidObject as exc:
            objects.errors.append(exc)
            log.warning("skipped a malformed %s: %s", what, exc)
            return None
        objects.add(obj)
        return obj

    def snapshot(self) -> ClusterObjects:
        objects = ClusterObjects()
        for raw in self._paged("/api/v1/nodes"):
            self._parse_into(objects, _with_kind(raw, "v1", "Node"), "Node")
        # Pods after nodes. Pending: no node, not finished; bound: on a node, not finished.
        unfinished = "status.phase!=Succeeded,status.phase!=Failed"
        for raw in self._paged("/api/v1/pods", [("fieldSelector", f"spec.nodeName=,{unfinished}")]):
            try:
                pod = parse_object(_with_kind(raw, "v1", "Pod"))
            except InvalidObject as exc:
                objects.errors.append(exc)
                log.warning("skipped a malformed Pod: %s", exc)
                continue
            if isinstance(pod, Pod) and pod.is_provisionable:
                objects.add(pod)
        for raw in self._paged("/api/v1/pods", [("fieldSelector", f"spec.nodeName!=,{unfinished}")]):
            self._parse_into(objects, _with_kind(raw, "v1", "Pod"), "Pod")
        for raw in self._paged("/apis/apps/v1/daemonsets"):
            self._parse_into(objects, _with_kind(raw, "apps/v1", "DaemonSet"), "DaemonSet")
        for raw in self._paged("/apis/policy/v1/poddisruptionbudgets"):
            self._parse_into(objects, _with_kind(raw, "policy/v1", "PodDisruptionBudget"), "PodDisruptionBudget")
        for raw in self._list_custom(*NODEPOOLS):
            self._parse_into(objects, _with_kind(raw, "karpenter.sh/v1", "NodePool"), "NodePool")
        for raw in self._list_custom(*NODECLASSES):
            self._parse_into(
                objects,
                _with_kind(raw, "karpenter.sagemaker.amazonaws.com/v1", "HyperpodNodeClass"),
                "HyperpodNodeClass",
            )
        self._read_gangs(objects)
        return objects

    def _read_gangs(self, objects: ClusterObjects) -> None:
        """ProvisioningRequests (none when the CRD is not installed) and the PodTemplates they name: the gangs."""
        for raw in self._list_custom(*PROVISIONING_REQUESTS):
            self._parse_into(
                objects, _with_kind(raw, "autoscaling.x-k8s.io/v1", "ProvisioningRequest"), "ProvisioningRequest"
            )
        if not objects.provisioning_requests:
            return  # no request names a template: no need to read them
        for raw in self._paged("/api/v1/podtemplates"):
            self._parse_into(objects, _with_kind(raw, "v1", "PodTemplate"), "PodTemplate")

    def _list_custom(self, group: str, version: str, plural: str) -> list[dict[str, Any]]:
        try:
            return list(self._paged(self._custom_path(group, version, plural)))
        except KubeApiError as exc:
            if exc.status == 404:  # the CRD is not installed: nothing of that kind
                return []
            raise

    def list_scaled_objects(self) -> list[dict[str, Any]]:
        return self._list_custom(*SCALEDOBJECTS)

    def get_node(self, name: str) -> Node | None:
        try:
            raw = self._call("GET", f"/api/v1/nodes/{name}")
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise
        node = parse_object(_with_kind(raw, "v1", "Node"))
        return node if isinstance(node, Node) else None

    def list_pods_on_node(self, node_name: str) -> list[Pod]:
        out: list[Pod] = []
        query = [("fieldSelector", f"spec.nodeName={node_name},status.phase!=Succeeded,status.phase!=Failed")]
        for raw in self._paged("/api/v1/pods", query):
            try:
                pod = parse_object(_with_kind(raw, "v1", "Pod"))
            except InvalidObject as exc:
                log.warning("skipped a malformed Pod on %s: %s", node_name, exc)
                continue
            if isinstance(pod, Pod):
                out.append(pod)
        return out

    # --- node writes (read-modify-write with resourceVersion, retried on 409) --------------------------------------------

    def _update_node(self, name: str, change: Callable[[dict[str, Any]], bool]) -> None:
        for _ in range(CONFLICT_RETRIES):
            try:
                raw = self._call("GET", f"/api/v1/nodes/{name}")
            except KubeApiError as exc:
                if exc.status == 404:
                    return  # a node that is gone needs no taint and no cordon
                raise
            if not change(raw):
                return  # already as wanted: idempotent
            try:
                self._call("PUT", f"/api/v1/nodes/{name}", body=raw)
                return
            except KubeApiError as exc:
                if exc.status == 409:
                    continue
                if exc.status == 404:
                    return
                raise
        raise kube_error(409, "Conflict", f"node {name}: still conflicting after {CONFLICT_RETRIES} attempts")

    def taint_node(self, node_name: str, taint: Taint) -> None:
        def add(raw: dict[str, Any]) -> bool:
            taints = raw.setdefault("spec", {}).setdefault("taints", []) or []
            if any(t.get("key") == taint.key and t.get("effect") == taint.effect for t in taints):
                return False
            entry = {"key": taint.key, "effect": taint.effect}
            if taint.value:
                entry["value"] = taint.value
            raw["spec"]["taints"] = [*taints, entry]
            return True

        self._update_node(node_name, add)

    def remove_taint(self, node_name: str, key: str) -> None:
        def drop(raw: dict[str, Any]) -> bool:
            taints = (raw.get("spec") or {}).get("taints") or []
            kept = [t for t in taints if t.get("key") != key]
            if len(kept) == len(taints):
                return False
            raw["spec"]["taints"] = kept
            return True

        self._update_node(node_name, drop)

    def _set_unschedulable(self, node_name: str, value: bool) -> None:
        def flip(raw: dict[str, Any]) -> bool:
            spec = raw.setdefault("spec", {})
            if bool(spec.get("unschedulable")) == value:
                return False
            spec["unschedulable"] = value
            return True

        self._update_node(node_name, flip)

    def label_node(self, node_name: str, labels: dict[str, str]) -> None:
        def merge(raw: dict[str, Any]) -> bool:
            current = raw.setdefault("metadata", {}).setdefault("labels", {}) or {}
            if all(current.get(k) == v for k, v in labels.items()):
                return False
            raw["metadata"]["labels"] = {**current, **labels}
            return True

        self._update_node(node_name, merge)

    def annotate_node_once(self, node_name: str, key: str, value: str) -> str | None:
        kept: list[str] = []

        def add(raw: dict[str, Any]) -> bool:
            current = raw.setdefault("metadata", {}).setdefault("annotations", {}) or {}
            if key in current:
                kept[:] = [str(current[key])]
                return False
            raw["metadata"]["annotations"] = {**current, key: value}
            kept[:] = [value]
            return True

        self._update_node(node_name, add)
        return kept[0] if kept else None

    def remove_node_annotation(self, node_name: str, key: str) -> None:
        def drop(raw: dict[str, Any]) -> bool:
            current = (raw.get("metadata") or {}).get("annotations") or {}
            if key not in current:
                return False
            raw["metadata"]["annotations"] = {k: v for k, v in current.items() if k != key}
            return True

        self._update_node(node_name, drop)

    def cordon(self, node_name: str) -> None:
        self._set_unschedulable(node_name, True)

    def uncordon(self, node_name: str) -> None:
        self._set_unschedulable(node_name, False)

    def disrupt(self, node_name: str) -> None:
        """Taint ``karpenter.sh/disrupted:NoSchedule`` and cordon (the first step of a drain)."""
        self.taint_node(node_name, Taint(key=DISRUPTED_TAINT_KEY, effect="NoSchedule"))
        self.cordon(node_name)

    # --- pods ------------------------------------------------------------------------------------------------------------

    def evict(self, namespace: str, name: str) -> EvictionResult:
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
        try:
            self._call("POST", f"/api/v1/namespaces/{namespace}/pods/{name}/eviction", body=body)
            return "evicted"
        except KubeApiError as exc:
            if exc.status == 429:
                return "blocked"
            if exc.status == 404:
                return "gone"
            if exc.status == 409:
                # not "gone": without a UID precondition (upstream's reading of 409) the pod may well still run there
                return "conflict"
            raise

    def delete_pod(self, namespace: str, name: str, grace_period_seconds: int | None = None) -> None:
        query = [("gracePeriodSeconds", grace_period_seconds)] if grace_period_seconds is not None else []
        try:
            self._call("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", query)
        except KubeApiError as exc:
            if exc.status != 404:
                raise

    # --- events and status -----------------------------------------------------------------------------------------------

    def record_event(self, ref: ObjectRef, reason: str, message: str, type_: str = "Normal") -> None:
        key = (f"{ref.kind}/{ref.namespace}/{ref.name}", reason, message, type_)
        now = self.now()
        if now - self._events_sent.get(key, 0.0) < 60:
            return  # deduplicated within a minute (a warm container re-deciding)
        self._events_sent[key] = now
        namespace = ref.namespace or "default"
        stamp = _stamp(now)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": ref.api_version,
                "kind": ref.kind,
                "name": ref.name,
                "namespace": ref.namespace,
                "uid": ref.uid,
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": EVENT_SOURCE},
            "reportingComponent": EVENT_SOURCE,
            "reportingInstance": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", EVENT_SOURCE),
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self._call("POST", f"/api/v1/namespaces/{namespace}/events", body=body)

    def _merge_status(self, path: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        for _ in range(CONFLICT_RETRIES):
            raw = self._call("GET", path)
            status = change(dict(raw.get("status") or {}))
            if status == (raw.get("status") or {}):
                return
            body = {"metadata": {"resourceVersion": raw["metadata"]["resourceVersion"]}, "status": status}
            try:
                self._call("PATCH", f"{path}/status", body=body, content_type="application/merge-patch+json")
                return
            except KubeApiError as exc:
                if exc.status != 409:
                    raise
        raise kube_error(409, "Conflict", f"{path}: still conflicting after {CONFLICT_RETRIES} attempts")

    def set_nodepool_conditions(self, name: str, conditions: list[dict[str, Any]]) -> None:
        self._merge_status(
            self._custom_path(*NODEPOOLS, name=name),
            lambda st: {**st, "conditions": merge_conditions(st, conditions, self.now())},
        )

    def set_nodeclass_status(self, name: str, status: dict[str, Any]) -> None:
        self._merge_status(self._custom_path(*NODECLASSES, name=name), _status_change(status, self.now()))

    def set_provisioning_request_status(
        self, namespace: str, name: str, conditions: list[dict[str, Any]], details: dict[str, str] | None = None
    ) -> None:
        path = self._custom_path(*PROVISIONING_REQUESTS, name=name, namespace=namespace)

        def change(st: dict[str, Any]) -> dict[str, Any]:
            out = {**st, "conditions": merge_conditions(st, conditions, self.now())}
            if details:
                out["provisioningClassDetails"] = {**(st.get("provisioningClassDetails") or {}), **details}
            return out

        self._merge_status(path, change)

    def set_scaled_object_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._merge_status(
            self._custom_path(*SCALEDOBJECTS, name=name, namespace=namespace), _status_change(status, self.now())
        )

    # --- scale -----------------------------------------------------------------------------------------------------------

    def _scale_path(self, kind: str, namespace: str, name: str) -> str:
        plural = SCALE_KINDS.get(kind)
        if plural is None:
            raise InvalidObject(
                "ScaledObject", name, "spec.scaleTargetRef.kind", f"{kind!r} has no scale subresource here"
            )
        return f"/apis/apps/v1/namespaces/{namespace}/{plural}/{name}/scale"

    def get_scale(self, kind: str, namespace: str, name: str) -> tuple[int, int]:
        raw = self._call("GET", self._scale_path(kind, namespace, name))
        return int((raw.get("spec") or {}).get("replicas", 0)), int((raw.get("status") or {}).get("replicas", 0))

    def set_scale(self, kind: str, namespace: str, name: str, replicas: int) -> None:
        self._call(
            "PATCH",
            self._scale_path(kind, namespace, name),
            body={"spec": {"replicas": int(replicas)}},
            content_type="application/merge-patch+json",
        )


def _status_change(status: dict[str, Any], now: float) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Merge ``status`` into a stored status: conditions by type (a changed one stamped ``now``), the other fields
    replaced."""

    def change(st: dict[str, Any]) -> dict[str, Any]:
        out = {**st, **{k: v for k, v in status.items() if k != "conditions"}}
        if "conditions" in status:
            out["conditions"] = merge_conditions(st, status["conditions"], now)
        return out

    return change


def merge_conditions(status: dict[str, Any], updates: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Merge conditions by type; ``lastTransitionTime`` (``now``, the adapter's clock) changes only when the status does."""
    stamp = _stamp(now)
    current = {c.get("type"): dict(c) for c in status.get("conditions") or [] if isinstance(c, dict)}
    for update in updates:
        kind = update.get("type")
        old = current.get(kind)
        new = dict(update)
        if old is not None and old.get("status") == new.get("status"):
            new["lastTransitionTime"] = old.get("lastTransitionTime") or stamp
        else:
            new.setdefault("lastTransitionTime", stamp)
        current[kind] = new
    return [current[k] for k in sorted(current, key=str)]


def _with_kind(raw: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """List items carry no apiVersion/kind: add them so that the core's parser knows what it reads."""
    if raw.get("kind") and raw.get("apiVersion"):
        return raw
    return {**raw, "apiVersion": api_version, "kind": kind}


def read_cluster_objects(kubeconfig: str, context: str | None) -> ClusterObjects:
    """Every object ``plan`` needs, from a live cluster: pending pods are all unbound unfinished pods here (the ``plan -f``
    contract), not only those the scheduler has marked Unschedulable; ProvisioningRequests and PodTemplates come with the
    snapshot."""
    cluster = KubeCluster.from_kubeconfig(kubeconfig, context)
    objects = cluster.snapshot()
    bound = {p.key for p in objects.pods}
    unfinished = "status.phase!=Succeeded,status.phase!=Failed"
    for raw in cluster._paged("/api/v1/pods", [("fieldSelector", f"spec.nodeName=,{unfinished}")]):
        try:
            pod = parse_object(_with_kind(raw, "v1", "Pod"))
        except InvalidObject:
            continue  # already recorded by snapshot()
        if isinstance(pod, Pod) and pod.key not in bound and pod.is_pending:
            objects.add(pod)
    return objects
