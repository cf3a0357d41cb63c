"""Cases from Karpenter's scheduling/instance_selection_test.go: the cheapest compatible offering is launched.

Upstream launches a NodeClaim with every compatible instance type and asserts the cheapest is among them; a HyperPod
NodeClaim is one instance group (one ml.* type in one zone), so here the claim's type is the cheapest compatible one.
Upstream's fake catalog has arm64 and windows types; the ml.* catalog has neither (docs/engine.md)."""

from __future__ import annotations

from typing import Any

from .model import INSTANCE_SELECTION, ITYPE, ZONE, ZONE1, ZONE2, Case, Expect, pending, req, world

ARCH = "kubernetes.io/arch"
OS = "kubernetes.io/os"
CHEAPEST = "ml.c5.xlarge"
"""The cheapest type of the fixture class (us-west-2c)."""
CHEAPEST_AB = "ml.m5.2xlarge"
"""The cheapest type in us-west-2a and us-west-2b."""
NO_ARM = (
    "the ml.* catalog has no arm64 instance type (nor windows): HyperPod instance groups run amd64 Linux, so a pod "
    "or NodePool asking arm64 gets no node where upstream's fake catalog has one"
)


def _i(it: str, name: str, objects: list[dict[str, Any]], expect: Expect, **kw: Any) -> Case:
    return Case(name, (INSTANCE_SELECTION, f"Instance Type Selection/{it}"), objects, expect, **kw)


CASES = [
    _i(
        "should schedule on one of the cheapest instances",
        "cheapest",
        world(pending("p")),
        Expect(scheduled=("p",), labels={ITYPE: CHEAPEST}),
    ),
    _i(
        "should schedule on one of the cheapest instances (pod arch = amd64)",
        "cheapest-pod-amd64",
        world(pending("p", req(ARCH, "In", "amd64"))),
        Expect(scheduled=("p",), labels={ITYPE: CHEAPEST}),
    ),
    _i(
        "should schedule on one of the cheapest instances (pod arch = arm64)",
        "cheapest-pod-arm64",
        world(pending("p", req(ARCH, "In", "arm64"))),
        Expect(scheduled=("p",)),
        deliberate_difference=NO_ARM,
        ours=Expect(unschedulable=("p",)),
    ),
    _i(
        "should schedule on one of the cheapest instances (prov arch = amd64)",
        "cheapest-prov-amd64",
        world(pending("p"), requirements=[req(ARCH, "In", "amd64")]),
        Expect(scheduled=("p",), labels={ITYPE: CHEAPEST}),
    ),
    _i(
        "should schedule on one of the cheapest instances (pod os = linux)",
        "cheapest-pod-linux",
        world(pending("p", req(OS, "In", "linux"))),
        Expect(scheduled=("p",), labels={ITYPE: CHEAPEST}),
    ),
    _i(
        "should schedule on one of the cheapest instances (pod os = windows)",
        "cheapest-pod-windows",
        world(pending("p", req(OS, "In", "windows"))),
        Expect(scheduled=("p",)),
        deliberate_difference=NO_ARM,
        ours=Expect(unschedulable=("p",)),
    ),
    _i(
        "should schedule on one of the cheapest instances (prov zone = test-zone-2)",
        "cheapest-prov-zone2",
        world(pending("p"), requirements=[req(ZONE, "In", ZONE2)]),
        Expect(scheduled=("p",), labels={ITYPE: CHEAPEST_AB, ZONE: ZONE2}),
    ),
    _i(
        "should schedule on one of the cheapest instances (pod zone = test-zone-2)",
        "cheapest-pod-zone2",
        world(pending("p", req(ZONE, "In", ZONE2))),
        Expect(scheduled=("p",), labels={ITYPE: CHEAPEST_AB, ZONE: ZONE2}),
    ),
    _i(
        "should schedule on one of the cheapest instances (prov ct = ondemand, prov zone = test-zone-1)",
        "cheapest-ondemand-zone1",
        world(
            pending("p"), requirements=[req("karpenter.sh/capacity-type", "In", "on-demand"), req(ZONE, "In", ZONE1)]
        ),
        Expect(scheduled=("p",), labels={ITYPE: CHEAPEST_AB, ZONE: ZONE1}),
    ),
    _i(
        "should not schedule if no instance type matches selector (pod arch = arm)",
        "no-type-arm",
        world(pending("p", req(ARCH, "In", "arm64")), requirements=[req(ARCH, "In", "amd64")]),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _i(
        "should not schedule if no instance type matches selector (prov arch = arm / pod zone=test-zone-2)",
        "no-type-prov-arm",
        world(pending("p", req(ZONE, "In", ZONE2)), requirements=[req(ARCH, "In", "arm64")]),
        Expect(unschedulable=("p",), new_nodes=0),
    ),
    _i(
        "should schedule on an instance with enough resources",
        "enough-resources",
        world(*(pending(f"p-{i}", cpu="2", memory="4Gi") for i in range(3))),
        Expect(scheduled=("p-0", "p-1", "p-2"), same_node=("p-0", "p-1", "p-2"), new_nodes=1),
    ),
]
