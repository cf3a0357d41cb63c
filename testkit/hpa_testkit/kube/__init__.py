"""A Kubernetes API emulator for the tests and the sandbox: kmock's ``KubernetesEmulator`` (HTTP server, request parsing,
discovery), completed with the project's object store (``store.Store``) for what kmock lacks: 201 on create,
uid/resourceVersion/creationTimestamp, optimistic concurrency (409), label and field selectors, limit/continue paging, PUT,
the status subresource, pods/eviction honouring PodDisruptionBudgets (429), pods/binding, the Scale subresource of
Deployments and StatefulSets, and watches that end after ``timeoutSeconds``.

It runs on its own asyncio loop in a daemon thread, so the synchronous official ``kubernetes`` client talks to it over HTTP
exactly as to an API server::

    emu = KubeEmulator().start()
    emu.write_kubeconfig("/tmp/kubeconfig")
    emu.apply({...})          # seed objects directly, without HTTP
    ...
    emu.stop()

Faults, for the error paths of the clients (``KubeEmulator.fail`` / ``hang``): the next N requests matching a method and a
path fragment are answered with an error status (409, 410, 429, 500, 503...) as a ``Status`` object, or held for some
real seconds before they are served (a hung API server: the client's read timeout fires, the request still takes
effect). ``faults_served`` records what was injected.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
import yaml

from .store import ApiError, ResourceType, Store

__all__ = ["ApiError", "Fault", "KubeEmulator", "KubeFaults", "ResourceType", "Store"]

MAX_WATCH_SECONDS = 10.0
REASONS = {
    409: "Conflict",
    410: "Expired",
    429: "TooManyRequests",
    500: "InternalError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass
class Fault:
    """Answer ``count`` matching requests with ``status`` (0: serve them) after holding them ``hang`` real seconds.
    ``methods`` (GET, PUT, POST, PATCH, DELETE) and ``path`` (a fragment of the URL path) narrow what matches."""

    status: int = 0
    count: int = 1
    methods: frozenset[str] | None = None
    path: str = ""
    hang: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and (self.methods is None or method in self.methods) and self.path in path


class Faults:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: list[Fault] = []
        self.served: list[tuple[str, str, int, float]] = []

    def take(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.pending:
                if fault.matches(method, path):
                    fault.count -= 1
                    self.served.append((method, path, fault.status, fault.hang))
                    return fault
        return None


#: What an API server answers under trouble: a write conflict, a watch/list resource version that is gone, priority and
#: fairness turning a request away, an internal error.
FAULT_STATUSES: dict[int, tuple[str, str]] = {
    409: ("Conflict", "the object has been modified; please apply your changes to the latest version and try again"),
    410: ("Expired", "too old resource version"),
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    500: ("InternalError", 'an error on the server ("etcdserver: request timed out") has prevented the request'),
}


@dataclass
class KubeFaults:
    """Faults the emulator injects into requests over HTTP (the direct seeding and reading methods are never hit): each
    request fails with probability ``rate`` with one of ``codes`` (see ``FAULT_STATUSES``), or hangs ``hang_seconds``
    real seconds with probability ``hang_rate`` (a client without a request timeout waits that long)."""

    rate: float = 0.0
    codes: tuple[int, ...] = (409, 410, 429, 500)
    hang_rate: float = 0.0
    hang_seconds: float = 1.0
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    injected: dict[str, int] = field(default_factory=dict)

    def draw(self) -> tuple[int | None, float]:
        """(status to answer or None, seconds to hang first)."""
        if not self.rate and not self.hang_rate:
            return None, 0.0
        hang = self.hang_seconds if self.hang_rate and self.rng.random() < self.hang_rate else 0.0
        code = self.rng.choice(self.codes) if self.rate and self.rng.random() < self.rate else None
        for key, hit in ((str(code), code is not None), ("hang", hang > 0)):
            if hit:
                self.injected[key] = self.injected.get(key, 0) + 1
        return code, hang


class _Emulator(kmock.KubernetesEmulator):
    """kmock's emulator with object requests served from the project's store."""

    store: Store
    faults: Faults
    random_faults: KubeFaults

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.resource is None or request.resource.plural is None:
            return await super()._handle(request)
        method = str(request.method).upper().rsplit(".", 1)[-1]
        fault = self.faults.take(method, str(request.url.path))
        if fault is not None and fault.hang:
            await asyncio.sleep(fault.hang)
        code, hang = self.random_faults.draw()
        if hang:
            await asyncio.sleep(hang)
        if code is not None:
            reason, message = FAULT_STATUSES[code]
            return aiohttp.web.json_response(ApiError(code, reason, message).status(), status=code)
        try:
            if fault is not None and fault.status:
                raise ApiError(fault.status, REASONS.get(fault.status, "Failure"), "injected fault")
            status, payload = await self._serve(request)
        except ApiError as exc:
            status, payload = exc.code, exc.status()
        if isinstance(payload, str):
            return aiohttp.web.Response(status=status, text=payload, content_type="application/json")
        return aiohttp.web.json_response(payload, status=status)

    async def _serve(self, request: kmock.Request) -> tuple[int, Any]:
        res = request.resource
        assert res is not None
        method = str(request.method).upper().rsplit(".", 1)[-1]
        if (res.group or "") == "" and res.plural == "bindings" and method == "POST":
            target = ((request.data or {}).get("metadata") or {}).get("name", "")
            return 201, self.store.bind(request.namespace or "default", target, request.data)
        t = self.store.type_of(res.group or "", res.plural or "")
        params = request.params
        ns = request.namespace
        name = request.name
        sub = request.subresource
        ctype = str(request.headers.get("Content-Type", "application/json"))
        body = request.data
        if name is None:
            if method == "GET":
                if str(params.get("watch", "")).lower() in ("true", "1"):
                    return 200, await self._watch(t, ns, params)
                limit = int(params["limit"]) if params.get("limit") else None
                return 200, self.store.list(
                    t, ns, params.get("labelSelector"), params.get("fieldSelector"), limit, params.get("continue")
                )
            if method == "POST":
                return 201, self.store.create(t, ns, body)
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on a collection")
        if sub == "eviction" and t.plural == "pods" and method == "POST":
            return 201, self.store.evict(ns or "default", name)
        if sub == "binding" and t.plural == "pods" and method == "POST":
            return 201, self.store.bind(ns or "default", name, body)
        if sub == "scale" and t.plural in ("deployments", "statefulsets", "replicasets"):
            if method == "GET":
                return 200, self.store.get_scale(t, ns or "default", name)
            if method in ("PUT", "PATCH"):
                return 200, self.store.set_scale(t, ns or "default", name, body, ctype)
        if sub not in (None, "status"):
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({t.plural}/{sub})")
        if method == "GET":
            return 200, self.store.get(t, ns, name)
        if method == "PUT":
            return 200, self.store.replace(t, ns, name, body, sub)
        if method == "PATCH":
            return 200, self.store.patch(t, ns, name, body, ctype, sub)
        if method == "DELETE":
            deleted = self.store.delete(t, ns, name)
            if t.plural == "pods" and not t.group:
                self.store.api_pod_deletes.append((ns or "default", name))
            return 200, deleted
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed")

    async def _watch(self, t: ResourceType, ns: str | None, params: dict[str, str]) -> str:
        """The events after ``resourceVersion`` (or the current objects as ADDED) until ``timeoutSeconds`` ends the watch:
        newline-delimited JSON, as the API server streams it."""
        timeout = min(float(params.get("timeoutSeconds") or MAX_WATCH_SECONDS), MAX_WATCH_SECONDS)
        since = params.get("resourceVersion")
        lines: list[str] = []
        if not since:
            listing = self.store.list(t, ns, params.get("labelSelector"), params.get("fieldSelector"))
            lines.extend(json.dumps({"type": "ADDED", "object": o}) for o in listing["items"])
            rv = int(listing["metadata"]["resourceVersion"])
        else:
            rv = int(since)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for ev_rv, kind, obj in self.store.events_since(t, rv, ns):
                lines.append(json.dumps({"type": kind, "object": obj}))
                rv = ev_rv
            if loop.time() >= deadline:
                break
            await asyncio.sleep(min(0.05, max(0.0, deadline - loop.time())))
        return "\n".join(lines) + ("\n" if lines else "")


class KubeEmulator:
    """The emulator as a synchronous object: start/stop, the URL, a kubeconfig, direct seeding and reading."""

    def __init__(self) -> None:
        self.store = Store()
        self.faults = Faults()
        self.random_faults = KubeFaults()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._handler: _Emulator | None = None
        self._server: kmock.Server | None = None
        self.url = ""

    # --- life cycle ------------------------------------------------------------------------------------------------------

    def start(self) -> KubeEmulator:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="kube-emulator", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._astart(), loop).result(timeout=30)
        return self

    async def _astart(self) -> None:
        handler = _Emulator()
        handler.store = self.store
        handler.faults = self.faults
        handler.random_faults = self.random_faults
        await handler.__aenter__()
        server = kmock.Server(handler)
        await server.__aenter__()
        self._handler, self._server = handler, server
        self.url = str(server.url).rstrip("/")

    def stop(self) -> None:
        if self._loop is None:
            return

        async def _astop() -> None:
            if self._server is not None:
                await self._server.__aexit__(None, None, None)
            if self._handler is not None:
                await self._handler.__aexit__(None, None, None)

        try:
            asyncio.run_coroutine_threadsafe(_astop(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._loop = None

    def __enter__(self) -> KubeEmulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def reset(self) -> None:
        """Drop every object (the resource types, CRDs included, stay)."""
        self.store.reset()
        with self.faults.lock:
            self.faults.pending.clear()
            self.faults.served.clear()
        if self._handler is not None:
            self._handler._requests.clear()

    # --- faults ----------------------------------------------------------------------------------------------------------

    def fail(self, status: int, count: int = 1, methods: set[str] | None = None, path: str = "") -> None:
        """Answer the next ``count`` matching requests with ``status`` (nothing is done for them)."""
        with self.faults.lock:
            self.faults.pending.append(Fault(status, count, frozenset(methods) if methods else None, path))

    def hang(self, seconds: float, count: int = 1, methods: set[str] | None = None, path: str = "") -> None:
        """Hold the next ``count`` matching requests ``seconds`` (real time) before serving them."""
        with self.faults.lock:
            self.faults.pending.append(Fault(0, count, frozenset(methods) if methods else None, path, seconds))

    def clear_faults(self) -> None:
        with self.faults.lock:
            self.faults.pending.clear()

    @property
    def faults_served(self) -> list[tuple[str, str, int, float]]:
        """(method, path, status, hang seconds) of every request a fault was applied to."""
        with self.faults.lock:
            return list(self.faults.served)

    # --- clients ---------------------------------------------------------------------------------------------------------

    def write_kubeconfig(self, path: str, context: str = "emulator") -> str:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "emulator"}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
        }
        Path(path).write_text(yaml.safe_dump(config))
        return path

    def api_client(self) -> Any:
        from kubernetes.client import ApiClient, Configuration

        cfg = Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": "emulator"}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        return ApiClient(cfg)

    # --- direct access (seeding and assertions, no HTTP) -----------------------------------------------------------------

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create, or replace what is there (status included), as a test or the sandbox seeds the cluster."""
        t = self.store.type_for(str(obj.get("apiVersion")), str(obj.get("kind")))
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or ("default" if t.namespaced else None)
        with self.store.lock:
            try:
                current = self.store.get(t, ns, meta.get("name", ""))
            except ApiError:
                created = self.store.create(t, ns, obj)
                if "status" in obj:
                    return self.store.replace(t, ns, created["metadata"]["name"], obj, "status")
                return created
            body = {**obj, "metadata": {**meta, "resourceVersion": current["metadata"]["resourceVersion"]}}
            self.store.replace(t, ns, meta["name"], body)
            if "status" in obj:
                return self.store.replace(t, ns, meta["name"], obj, "status")
            return self.store.get(t, ns, meta["name"])

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        t = self.store.type_for(api_version, kind)
        try:
            return self.store.get(t, namespace or ("default" if t.namespaced else None), name)
        except ApiError:
            return None

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        t = self.store.type_for(api_version, kind)
        return list(self.store.list(t, namespace)["items"])

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, *, scale_down: bool = False
    ) -> bool:
        t = self.store.type_for(api_version, kind)
        try:
            self.store.delete(t, namespace or ("default" if t.namespaced else None), name, scale_down=scale_down)
            return True
        except ApiError:
            return False

    def patch_status(
        self, api_version: str, kind: str, name: str, status: dict[str, Any], namespace: str | None = None
    ) -> None:
        t = self.store.type_for(api_version, kind)
        ns = namespace or ("default" if t.namespaced else None)
        self.store.patch(t, ns, name, {"status": status}, "application/merge-patch+json", "status")

    @property
    def request_count(self) -> int:
        return len(self._handler._requests) if self._handler is not None else 0
