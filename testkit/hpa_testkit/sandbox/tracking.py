"""What the sandbox measures about pods: time to capacity (pending -> bound), and whether a pod had to wait for a new node.

"Time to capacity beyond the provisioning delay" is the figure the autoscaler controls: for a pod that waited for a new
node it is the wait minus the emulated Pending -> Running delay of that node; for a pod that found room it is the whole wait.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PodRecord:
    key: str
    pending_since: float
    bound_at: float | None = None
    node: str | None = None
    node_created_at: float | None = None
    owner_kind: str | None = None
    """The kind of the pod's controller (Job, ReplicaSet, ...): Job pods are the ones no ScaledObject announced."""


@dataclass
class PodTracker:
    records: dict[str, PodRecord] = field(default_factory=dict)
    node_created: dict[str, float] = field(default_factory=dict)
    served: set[str] = field(default_factory=set)

    def observe_node(self, name: str, t: float) -> None:
        self.node_created.setdefault(name, t)

    def observe_pending(self, uid: str, key: str, t: float, owner_kind: str | None = None) -> None:
        if uid not in self.records:
            self.records[uid] = PodRecord(key, t, owner_kind=owner_kind)

    def observe_bound(self, uid: str, key: str, node: str, t: float, owner_kind: str | None = None) -> None:
        record = self.records.get(uid)
        if record is None:
            # bound before we ever saw it pending (room on an existing node within the same tick)
            record = self.records[uid] = PodRecord(key, t, owner_kind=owner_kind)
        if record.bound_at is None:
            record.bound_at = t
            record.node = node
            record.node_created_at = self.node_created.get(node)
        self.served.add(uid)

    def forget(self, uid: str) -> None:
        """A pod deleted while pending (scale-down before it was served) is not counted."""
        record = self.records.get(uid)
        if record is not None and record.bound_at is None:
            del self.records[uid]

    def times_to_capacity(self) -> list[float]:
        return [r.bound_at - r.pending_since for r in self.records.values() if r.bound_at is not None]

    def beyond_provisioning(self, delay_for_node: dict[str, float], owner_kind: str | None = None) -> list[float]:
        """Each served pod's wait beyond its new node's boot (only pods whose controller is ``owner_kind``, if given)."""
        out = []
        for r in self.records.values():
            if r.bound_at is None or (owner_kind is not None and r.owner_kind != owner_kind):
                continue
            wait = r.bound_at - r.pending_since
            waited_for_new_node = r.node_created_at is not None and r.node_created_at > r.pending_since
            if waited_for_new_node and r.node is not None:
                wait -= delay_for_node.get(r.node, 0.0)
            out.append(max(0.0, wait))
        return out

    def unserved(self) -> list[str]:
        return sorted(r.key for r in self.records.values() if r.bound_at is None)
