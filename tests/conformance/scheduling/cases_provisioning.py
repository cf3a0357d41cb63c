"""Cases from Karpenter's provisioning/suite_test.go (NodePool selection, limits, DaemonSets, taints) and the
scheduling/suite_test.go parts about capacity: instance type compatibility, binpacking, existing nodes, host ports."""

from __future__ import annotations

from typing import Any

from tests.unit.engine_fixtures import daemonset, node, nodeclass, nodepool, pod

from .model import (
    ITYPE,
    NODEPOOL,
    PROVISIONING,
    SCHEDULING,
    ZONE,
    ZONE1,
    ZONE2,
    Case,
    Expect,
    deleting,
    host_port,
    not_ready,
    pending,
    req,
    world,
)

PROVISIONER = "pkg/controllers/provisioning/provisioner.go"
NOT_MANAGED = (NODEPOOL, "DoesNotExist")


def _p(it: str, name: str, objects: list[dict[str, Any]], expect: Expect, **kw: Any) -> Case:
    return Case(name, (PROVISIONING, f"Provisioning/{it}"), objects, expect, **kw)


def _s(it: str, name: str, objects: list[dict[str, Any]], expect: Expect, **kw: Any) -> Case:
    return Case(name, (SCHEDULING, f"Scheduling/{it}"), objects, expect, **kw)


def _apart(n: int, cpu: str = "1.5") -> list[dict[str, Any]]:
    """``n`` pods of app foo, each refusing a node another foo pod runs on (required anti-affinity on hostname)."""
    term = {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "foo"}}}
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return [pending(f"foo-{i}", cpu=cpu, labels={"app": "foo"}, spec={"affinity": anti}) for i in range(n)]


def _ds_port(ds: dict[str, Any], port: int) -> dict[str, Any]:
    """``ds`` whose pods ask ``port`` on the host."""
    ds["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": port, "hostPort": port}]
    return ds


def _ds_with(requests: dict[str, str], limits: dict[str, str], init: dict[str, Any] | None = None) -> dict[str, Any]:
    """A DaemonSet whose container has ``requests`` and ``limits`` (and an init container with ``init`` resources)."""
    ds = daemonset("0")
    ds["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": requests, "limits": limits}
    if init is not None:
        ds["spec"]["template"]["spec"]["initContainers"] = [{"name": "init", "resources": init}]
    return ds


def _weird_zero(p: dict[str, Any]) -> dict[str, Any]:
    """``p`` requesting (and limited to) 0 of a resource no instance type has."""
    resources = p["spec"]["containers"][0]["resources"]
    resources["requests"]["foo.com/weird-resources"] = "0"
    resources["limits"] = {"foo.com/weird-resources": "0"}
    return p


def _ec2_named_like_ours() -> list[dict[str, Any]]:
    """NodePool ``default`` referring to an EC2NodeClass ``hp``; a HyperpodNodeClass ``hp`` exists too."""
    return [nodeclass(), nodepool(kind="EC2NodeClass", group="karpenter.k8s.aws")]


TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
TOLERATE = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
STATIC = "static-node"
C5_ONLY = req("node.kubernetes.io/instance-type", "In", "ml.c5.xlarge")


def _bound(name: str, on: str) -> dict[str, Any]:
    return pod(name, node=on)


CASES = [
    _p("should provision nodes", "provision-nodes", world(pending("p")), Expect(scheduled=("p",), new_nodes=1)),
    _p(
        "Should provision nodes for multiple pods",
        "provision-multiple-pods",
        world(pending("a"), pending("b")),
        Expect(scheduled=("a", "b"), same_node=("a", "b")),
    ),
    _p(
        "should ignore NodePools that are deleting",
        "nodepool-deleting",
        world(pending("p"), pools=[deleting(nodepool())]),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _p(
        "should ignore NodePools that are deleting",
        "nodepool-deleting-other-used",
        world(pending("p"), pools=[deleting(nodepool("old", weight=100)), nodepool("new")]),
        Expect(scheduled=("p",), labels={NODEPOOL: "new"}),
    ),
    _p(
        "should mark pod as unschedulable if there are no valid nodepools",
        "no-valid-nodepools",
        [*_ec2_named_like_ours(), pending("p")],
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    Case(
        "nodeclassref-group-kind",
        (PROVISIONER, "NewScheduler: only NodePools whose nodeClassRef GroupKind is a supported NodeClass (IsManaged)"),
        [*_ec2_named_like_ours(), nodepool("hyperpod", nodeclass_name="hp"), pending("p")],
        Expect(scheduled=("p",), labels={NODEPOOL: "hyperpod"}),
    ),
    _p(
        "should not schedule pods with nodePool which is not ready (NodePool Ready derives from NodeClassReady)",
        "nodeclass-not-ready",
        [not_ready(nodeclass()), nodepool(), pending("p")],
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    Case(
        "nodepool-not-ready-other-used",
        (PROVISIONER, "NewScheduler: NodePools not Ready are ignored, the Ready ones used"),
        world(pending("p"), pools=[not_ready(nodepool("broken", weight=100)), nodepool("ok")]),
        Expect(scheduled=("p",), labels={NODEPOOL: "ok"}),
    ),
    Case(
        "nodepool-doesnotexist-existing-node",
        (PROVISIONER, "Schedule: pods requiring karpenter.sh/nodepool DoesNotExist get no NodeClaim"),
        world(node(STATIC, "cpu-m5-az1"), pending("p", req(*NOT_MANAGED))),
        Expect(scheduled=("p",), on_node={"p": STATIC}, new_nodes=0),
    ),
    Case(
        "nodepool-doesnotexist-no-node",
        (PROVISIONER, "Schedule: pods requiring karpenter.sh/nodepool DoesNotExist get no NodeClaim"),
        world(node(STATIC, "cpu-m5-az1", cpu="1"), pending("p", req(*NOT_MANAGED), cpu="2")),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    Case(
        "nodepool-doesnotexist-not-on-managed-node",
        (PROVISIONER, "Schedule: pods requiring karpenter.sh/nodepool DoesNotExist get no NodeClaim"),
        world(node("managed", "cpu-m5-az1", labels={NODEPOOL: "default"}), pending("p", req(*NOT_MANAGED))),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _p(
        "Resource Limits/should not schedule when limits are exceeded",
        "limits-exceeded",
        world(
            node("full", "cpu-m5-az1", labels={NODEPOOL: "default"}, unschedulable=True),
            pending("p"),
            limits={"cpu": "4"},
        ),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _p(
        "Resource Limits/should schedule if limits would be met",
        "limits-met",
        world(pending("p", cpu="1.75"), limits={"cpu": "4"}),
        Expect(scheduled=("p",), new_nodes=1),
    ),
    _p(
        "Resource Limits/should partially schedule if limits would be exceeded",
        "limits-partial",
        world(*_apart(2), limits={"cpu": "4"}),
        Expect(new_nodes=1, unschedulable=("foo-1",), scheduled=("foo-0",)),
    ),
    _p(
        "Resource Limits/should not schedule if limits would be exceeded",
        "limits-pod-too-big",
        world(pending("p", cpu="4.1"), limits={"cpu": "4"}),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _p(
        "Resource Limits/should not schedule if limits would be exceeded (GPU)",
        "limits-gpu",
        world(pending("p", gpu=1), limits={"nvidia.com/gpu": "0"}),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _p(
        "Resource Limits/should not schedule if limits would be exceeded (node)",
        "limits-nodes",
        world(*_apart(3), limits={"nodes": "2"}),
        Expect(new_nodes=2, scheduled=("foo-0", "foo-1"), unschedulable=("foo-2",)),
    ),
    _p(
        "Daemonsets/should not schedule if daemonset overhead is too large",
        "daemonset-overhead-too-large",
        world(daemonset("200"), pending("p")),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _p(
        "Daemonsets/should account for daemonset hostports",
        "daemonset-hostport",
        world(
            node(STATIC, "cpu-m5-az1"),
            _ds_port(daemonset("2", "2Gi"), 8080),
            host_port(pending("p", memory="1Gi"), 8080),
        ),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _p(
        "Daemonsets/should not account for daemonset hostports when daemonset would not schedule on selected node",
        "daemonset-hostport-elsewhere",
        # upstream's "large" and "small" sizes are ml.m5.2xlarge and ml.c5.xlarge
        world(
            _ds_port(daemonset("1", name="large", nodeSelector={ITYPE: "ml.m5.2xlarge"}), 8080),
            _ds_port(daemonset("1", name="small", nodeSelector={ITYPE: "ml.c5.xlarge"}), 8081),
            host_port(pending("p", selector={ITYPE: "ml.c5.xlarge"}), 8080),
        ),
        Expect(scheduled=("p",), labels={ITYPE: "ml.c5.xlarge"}),
    ),
    _p(
        "Daemonsets/should not schedule if resource requests are not defined and limits (requests) are too large",
        "daemonset-limits-as-requests",
        world(_ds_with({"cpu": "1"}, {"cpu": "10000", "memory": "10000Gi"}), pending("p")),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _p(
        "Daemonsets/should schedule based on the max resource requests of containers and initContainers",
        "daemonset-init-max",
        # the DaemonSet needs 3 CPUs (its init container): with the pod, more than a c5.xlarge, as upstream's 2-CPU type
        world(
            _ds_with(
                {"cpu": "1"},
                {"cpu": "10000", "memory": "1Gi"},
                {"requests": {"cpu": "3"}, "limits": {"cpu": "10000", "memory": "3Gi"}},
            ),
            pending("p"),
        ),
        Expect(scheduled=("p",), labels={ITYPE: "ml.m5.2xlarge"}),
    ),
    _p(
        "Daemonsets/should not schedule if combined max resources are too large for any node",
        "daemonset-init-too-large-combined",
        world(
            _ds_with(
                {"cpu": "1"},
                {"cpu": "10000", "memory": "1Gi"},
                {"requests": {"cpu": "1"}, "limits": {"cpu": "10000", "memory": "10000Gi"}},
            ),
            pending("p"),
        ),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _p(
        "Daemonsets/should not schedule if initContainer resources are too large",
        "daemonset-init-too-large",
        world(_ds_with({}, {}, {"requests": {"cpu": "10000", "memory": "10000Gi"}}), pending("p")),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _p(
        "Daemonsets/should be able to schedule pods if resource requests and limits are not defined",
        "daemonset-no-requests",
        world(_ds_with({}, {}), pending("p")),
        Expect(scheduled=("p",)),
    ),
    _p(
        "Daemonsets/should ignore daemonsets without matching tolerations",
        "daemonset-untolerated-ignored",
        # the pool launches only c5.xlarge (3.92 CPUs allocatable): a 3-CPU pod fits only if the 3-CPU DaemonSet,
        # which does not tolerate the pool's taint, is not counted there
        world(
            daemonset("3"),
            pending("p", cpu="3", spec={"tolerations": TOLERATE}),
            taints=[TAINT],
            requirements=[req("node.kubernetes.io/instance-type", "In", "ml.c5.xlarge")],
        ),
        Expect(scheduled=("p",), new_nodes=1),
    ),
    _p(
        "Taints/should schedule pods that tolerate taints",
        "taints-tolerated",
        world(pending("p", spec={"tolerations": TOLERATE}), taints=[TAINT]),
        Expect(scheduled=("p",)),
    ),
    _p(
        "Taints/should schedule pods that tolerate taints",
        "taints-not-tolerated",
        world(pending("p"), taints=[TAINT]),
        Expect(unschedulable=("p",)),
    ),
    _p(
        "Multiple NodePools/should schedule to an explicitly selected NodePool",
        "multiple-explicit-nodepool",
        world(pending("p", selector={NODEPOOL: "b"}), pools=[nodepool("a"), nodepool("b")]),
        Expect(scheduled=("p",), labels={NODEPOOL: "b"}),
    ),
    _p(
        "Multiple NodePools/should schedule to a NodePool by labels",
        "multiple-by-labels",
        world(pending("p", selector={"foo": "bar"}), pools=[nodepool("a"), nodepool("b", labels={"foo": "bar"})]),
        Expect(scheduled=("p",), labels={NODEPOOL: "b"}),
    ),
    _p(
        "Multiple NodePools/should not match NodePool with PreferNoSchedule taint when other NodePool match",
        "multiple-prefer-no-schedule",
        world(
            pending("p"),
            pools=[
                nodepool("a", taints=[{"key": "foo", "value": "bar", "effect": "PreferNoSchedule"}]),
                nodepool("b"),
            ],
        ),
        Expect(scheduled=("p",), labels={NODEPOOL: "b"}),
    ),
    _p(
        "Multiple NodePools/Weighted NodePools/should schedule to the nodepool with the highest priority always",
        "weighted-highest",
        world(pending("a"), pending("b"), pools=[nodepool("low"), nodepool("high", weight=100)]),
        Expect(scheduled=("a", "b"), labels={NODEPOOL: "high"}),
    ),
    _p(
        "Multiple NodePools/Weighted NodePools/should schedule to explicitly selected nodepool even if other "
        "nodePools are higher priority",
        "weighted-explicit",
        world(pending("p", selector={NODEPOOL: "low"}), pools=[nodepool("low"), nodepool("high", weight=100)]),
        Expect(scheduled=("p",), labels={NODEPOOL: "low"}),
    ),
    _s(
        "Instance Type Compatibility/should not schedule if requesting more resources than any instance type has",
        "itype-too-big",
        world(pending("p", cpu="512")),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _s(
        "Instance Type Compatibility/should launch pods with different zone selectors on different instances",
        "itype-zone-selectors-apart",
        world(pending("a", selector={ZONE: ZONE1}), pending("b", selector={ZONE: ZONE2})),
        Expect(scheduled=("a", "b"), apart=("a", "b"), new_nodes=2),
    ),
    _s(
        "Instance Type Compatibility/should launch pods with different instance type node selectors on different "
        "instances",
        "itype-type-selectors-apart",
        world(
            pending("a", selector={"node.kubernetes.io/instance-type": "ml.c5.xlarge"}),
            pending("b", selector={"node.kubernetes.io/instance-type": "ml.m5.2xlarge"}),
        ),
        Expect(scheduled=("a", "b"), apart=("a", "b"), new_nodes=2),
    ),
    _s(
        "Instance Type Compatibility/should fail to schedule a pod with resources requests that aren't on a single "
        "instance type",
        "itype-no-single-type",
        # GPUs only on g-types, 100 CPUs only with 8 GPUs: 100 CPUs and 9 GPUs exist on no single type
        world(pending("p", cpu="100", gpu=9)),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _s(
        "Binpacking/should schedule a small pod on the smallest instance",
        "binpack-smallest",
        world(pending("p", memory="100M")),
        Expect(scheduled=("p",), labels={"node.kubernetes.io/instance-type": "ml.c5.xlarge"}),
    ),
    _s(
        "Binpacking/should create new nodes when a node is at capacity",
        "binpack-at-capacity",
        world(*(pending(f"p-{i}", cpu="1.8", memory="1Gi") for i in range(4)), requirements=[C5_ONLY]),
        Expect(scheduled=("p-0", "p-1", "p-2", "p-3"), new_nodes=2),
    ),
    _s(
        "Binpacking/should not schedule pods that exceed every instance type's capacity",
        "binpack-exceeds-memory",
        world(pending("p", memory="2Ti")),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _s(
        "Binpacking/should create new nodes when a node is at capacity due to pod limits per node",
        "binpack-pod-limit",
        world(*(pending(f"p-{i}", cpu="10m", memory="1Mi") for i in range(111)), requirements=[C5_ONLY]),
        Expect(new_nodes=2, scheduled=tuple(f"p-{i}" for i in range(111))),
    ),
    _s(
        "Binpacking/should take into account initContainer resource requests when binpacking",
        "binpack-init-container",
        # the init container needs 3 CPUs: more than a c5.xlarge holds with the 1-CPU sibling pod
        world(
            pending("init", spec={"initContainers": [{"name": "i", "resources": {"requests": {"cpu": "3"}}}]}),
            pending("plain", cpu="1"),
            requirements=[C5_ONLY],
        ),
        Expect(scheduled=("init", "plain"), apart=("init", "plain"), new_nodes=2),
    ),
    _s(
        "Binpacking/should not schedule pods when initContainer resource requests are greater than available instance "
        "types",
        "binpack-init-too-large",
        world(pending("p", spec={"initContainers": [{"name": "i", "resources": {"requests": {"cpu": "512"}}}]})),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _s(
        "Binpacking/should handle zero-quantity resource requests",
        "binpack-zero-quantity",
        world(_weird_zero(pending("p"))),
        Expect(scheduled=("p",), new_nodes=1),
    ),
    _s(
        "In-Flight Nodes/should launch a second node if a pod won't fit on the existingNodes node",
        "inflight-no-room",
        # upstream's first round launched a 2-CPU node for a 1001m pod; here that node runs it
        world(
            node("node-1", "cpu-c5-az3", cpu="2", labels={NODEPOOL: "default"}),
            pod("initial", cpu="1001m", node="node-1"),
            pending("second", cpu="1"),
        ),
        Expect(scheduled=("second",), new_nodes=1),
    ),
    _s(
        "In-Flight Nodes/should launch a second node if a pod isn't compatible with the existingNodes node "
        "(node selector)",
        "inflight-incompatible",
        # upstream's second pod asks arm64; no ml.* type is arm64 (docs/engine.md), so it asks the other zone instead
        world(
            node("node-1", "cpu-c5-az3", cpu="4", labels={NODEPOOL: "default"}),
            pod("initial", cpu="10m", node="node-1"),
            pending("second", selector={ZONE: ZONE1}),
        ),
        Expect(scheduled=("second",), labels={ZONE: ZONE1}, new_nodes=1),
    ),
    _s(
        "In-Flight Nodes/Taints/should not assume pod will schedule to a tainted node",
        "inflight-tainted",
        world(
            node(
                "node-1",
                "cpu-m5-az1",
                labels={NODEPOOL: "default"},
                taints=[{"key": "foo.com/taint", "value": "tainted", "effect": "NoSchedule"}],
            ),
            pending("second"),
        ),
        Expect(scheduled=("second",), new_nodes=1),
    ),
    _s(
        "Existing Nodes/should schedule a pod to an existing node unowned by Karpenter",
        "existing-unowned",
        world(node(STATIC, "cpu-m5-az1", cpu="10", memory="10Gi"), pending("p", cpu="10m")),
        Expect(scheduled=("p",), on_node={"p": STATIC}, new_nodes=0),
    ),
    _s(
        "Existing Nodes/should schedule multiple pods to an existing node unowned by Karpenter",
        "existing-unowned-many",
        world(
            node(STATIC, "cpu-m5-az1", cpu="10", memory="100Gi"),
            *(pending(f"p-{i}", cpu="10m") for i in range(100)),
        ),
        Expect(scheduled=tuple(f"p-{i}" for i in range(100)), new_nodes=0),
    ),
    _s(
        "Existing Nodes/should consider a pod incompatible with an existing node but compatible with NodePool",
        "existing-incompatible",
        world(node(STATIC, "cpu-m5-az2", cpu="10", memory="10Gi"), pending("p", req(ZONE, "In", ZONE1))),
        Expect(scheduled=("p",), labels={ZONE: ZONE1}, new_nodes=1),
    ),
    _s(
        "In-Flight Nodes/should schedule pods with the same host port to different nodes",
        "hostport-same-apart",
        world(host_port(pending("a"), 8080), host_port(pending("b"), 8080)),
        Expect(scheduled=("a", "b"), apart=("a", "b")),
    ),
    _s(
        "In-Flight Nodes/should schedule pods with the same host port to different nodes",
        "hostport-existing-node",
        world(node(STATIC, "cpu-m5-az1"), host_port(_bound("running", STATIC), 8080), host_port(pending("p"), 8080)),
        Expect(scheduled=("p",), new_nodes=1),
    ),
    _s(
        "In-Flight Nodes/should schedule pods with the same host port to different nodes",
        "hostport-other-protocol",
        world(host_port(pending("a"), 53, "TCP"), host_port(pending("b"), 53, "UDP")),
        Expect(scheduled=("a", "b"), same_node=("a", "b")),
    ),
    _s(
        "In-Flight Nodes/should schedule pods with the same host port to different nodes",
        "hostport-wildcard-ip",
        world(host_port(pending("a"), 80, host_ip="10.0.0.1"), host_port(pending("b"), 80, host_ip="0.0.0.0")),
        Expect(scheduled=("a", "b"), apart=("a", "b")),
    ),
    _s(
        "In-Flight Nodes/should schedule pods with the same host port to different nodes",
        "hostport-distinct-ips",
        world(host_port(pending("a"), 80, host_ip="10.0.0.1"), host_port(pending("b"), 80, host_ip="10.0.0.2")),
        Expect(scheduled=("a", "b"), same_node=("a", "b")),
    ),
]
