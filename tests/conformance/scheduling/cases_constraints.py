"""Cases from Karpenter's scheduling/suite_test.go: custom constraints, well-known labels, scheduling logic and
preferential fallback (the NodePool's node requirements against the pod's node selector and node affinity)."""

from __future__ import annotations

from typing import Any

from tests.unit.engine_fixtures import nodepool

from .model import (
    HOSTNAME,
    ITYPE,
    SCHEDULING,
    ZONE,
    ZONE1,
    ZONE2,
    ZONE3,
    Case,
    Expect,
    not_ready,
    pending,
    req,
    requires,
    world,
)

TEST_KEY = "test-key"


def _labelled(*objects: dict[str, Any]) -> list[dict[str, Any]]:
    """NodePool ``default`` with the template label test-key=test-value ("NodePool with Labels")."""
    return world(*objects, labels={TEST_KEY: "test-value"})


def _keyed(*objects: dict[str, Any]) -> list[dict[str, Any]]:
    """NodePool ``default`` requiring test-key In [test-value, another-value] (Scheduling Logic)."""
    return world(*objects, requirements=[req(TEST_KEY, "In", "test-value", "another-value")])


def _zones(*zones: str) -> list[dict[str, Any]]:
    return [req(ZONE, "In", *zones)]


def _c(it: str, name: str, objects: list[dict[str, Any]], expect: Expect, ctx: str = "Custom Constraints") -> Case:
    return Case(name, (SCHEDULING, f"Scheduling/{ctx}/{it}"), objects, expect)


ALL_ZONES = (ZONE1, ZONE2, ZONE3, "unknown")
LABELS = "Custom Constraints/NodePool with Labels"
WELL_KNOWN = "Custom Constraints/Well Known Labels"
LOGIC = "Custom Constraints/Scheduling Logic"
VALIDATION = "Custom Constraints/Constraints Validation"

CASES = [
    _c(
        "should schedule unconstrained pods that don't have matching node selectors",
        "labels-unconstrained",
        _labelled(pending("p")),
        Expect(scheduled=("p",), labels={TEST_KEY: "test-value"}),
        LABELS,
    ),
    _c(
        "should not schedule pods that have conflicting node selectors",
        "labels-conflicting-selector",
        _labelled(pending("p", selector={TEST_KEY: "different-value"})),
        Expect(unschedulable=("p",)),
        LABELS,
    ),
    _c(
        "should not schedule pods that have node selectors with undefined key",
        "labels-undefined-key",
        world(pending("p", selector={TEST_KEY: "test-value"})),
        Expect(unschedulable=("p",)),
        LABELS,
    ),
    _c(
        "should schedule pods that have matching requirements",
        "labels-matching-requirements",
        _labelled(pending("p", req(TEST_KEY, "In", "test-value", "another-value"))),
        Expect(scheduled=("p",), labels={TEST_KEY: "test-value"}),
        LABELS,
    ),
    _c(
        "should not schedule pods that have conflicting requirements",
        "labels-conflicting-requirements",
        _labelled(pending("p", req(TEST_KEY, "In", "another-value"))),
        Expect(unschedulable=("p",)),
        LABELS,
    ),
    _c(
        "should use NodePool constraints",
        "wellknown-nodepool-constraints",
        world(pending("p"), requirements=_zones(ZONE2)),
        Expect(scheduled=("p",), labels={ZONE: ZONE2}),
        WELL_KNOWN,
    ),
    _c(
        "should use node selectors",
        "wellknown-node-selectors",
        world(pending("p", selector={ZONE: ZONE2}), requirements=_zones(ZONE1, ZONE2)),
        Expect(scheduled=("p",), labels={ZONE: ZONE2}),
        WELL_KNOWN,
    ),
    _c(
        "should not schedule nodes with a hostname selector",
        "wellknown-hostname-selector",
        world(pending("p", selector={HOSTNAME: "red-node"})),
        Expect(unschedulable=("p",)),
        WELL_KNOWN,
    ),
    _c(
        "should not schedule the pod if nodeselector unknown",
        "wellknown-unknown-selector",
        world(pending("p", selector={ZONE: "unknown"}), requirements=_zones(ZONE1)),
        Expect(unschedulable=("p",)),
        WELL_KNOWN,
    ),
    _c(
        "should not schedule if node selector outside of NodePool constraints",
        "wellknown-outside-nodepool",
        world(pending("p", selector={ZONE: ZONE2}), requirements=_zones(ZONE1)),
        Expect(unschedulable=("p",)),
        WELL_KNOWN,
    ),
    _c(
        "should schedule compatible requirements with Operator=In",
        "wellknown-in",
        world(pending("p", req(ZONE, "In", ZONE3))),
        Expect(scheduled=("p",), labels={ZONE: ZONE3}),
        WELL_KNOWN,
    ),
    _c(
        "should not schedule incompatible preferences and requirements with Operator=In",
        "wellknown-in-unknown",
        world(pending("p", req(ZONE, "In", "unknown"))),
        Expect(unschedulable=("p",)),
        WELL_KNOWN,
    ),
    _c(
        "should schedule compatible requirements with Operator=NotIn",
        "wellknown-notin",
        world(pending("p", req(ZONE, "NotIn", ZONE1, ZONE2, "unknown"))),
        Expect(scheduled=("p",), labels={ZONE: ZONE3}),
        WELL_KNOWN,
    ),
    _c(
        "should not schedule incompatible preferences and requirements with Operator=NotIn",
        "wellknown-notin-all",
        world(pending("p", req(ZONE, "NotIn", *ALL_ZONES))),
        Expect(unschedulable=("p",)),
        WELL_KNOWN,
    ),
    _c(
        "should schedule compatible preferences and requirements with Operator=In",
        "wellknown-pref-in",
        world(pending("p", req(ZONE, "In", *ALL_ZONES), prefer=[req(ZONE, "In", ZONE2, "unknown")])),
        Expect(scheduled=("p",), labels={ZONE: ZONE2}),
        WELL_KNOWN,
    ),
    _c(
        "should schedule incompatible preferences and requirements with Operator=In",
        "wellknown-pref-in-incompatible",
        world(pending("p", req(ZONE, "In", *ALL_ZONES), prefer=[req(ZONE, "In", "unknown")])),
        Expect(scheduled=("p",)),
        WELL_KNOWN,
    ),
    _c(
        "should schedule compatible preferences and requirements with Operator=NotIn",
        "wellknown-pref-notin",
        world(pending("p", req(ZONE, "In", *ALL_ZONES), prefer=[req(ZONE, "NotIn", ZONE1, ZONE3)])),
        Expect(scheduled=("p",), labels={ZONE: ZONE2}),
        WELL_KNOWN,
    ),
    _c(
        "should schedule incompatible preferences and requirements with Operator=NotIn",
        "wellknown-pref-notin-incompatible",
        world(pending("p", req(ZONE, "In", *ALL_ZONES), prefer=[req(ZONE, "NotIn", ZONE1, ZONE2, ZONE3)])),
        Expect(scheduled=("p",)),
        WELL_KNOWN,
    ),
    _c(
        "should schedule compatible node selectors, preferences and requirements",
        "wellknown-selector-pref-req",
        world(
            pending(
                "p",
                req(ZONE, "In", ZONE1, ZONE2, ZONE3),
                selector={ZONE: ZONE3},
                prefer=[req(ZONE, "In", ZONE1, ZONE2, ZONE3)],
            )
        ),
        Expect(scheduled=("p",), labels={ZONE: ZONE3}),
        WELL_KNOWN,
    ),
    _c(
        "should combine multidimensional node selectors, preferences and requirements",
        "wellknown-multidimensional",
        # upstream's arm-instance-type is the only type in test-zone-3; here ml.c5.xlarge is
        world(
            pending(
                "p",
                req(ZONE, "In", ZONE1, ZONE3),
                req(ITYPE, "In", "ml.m5.2xlarge", "ml.c5.xlarge"),
                selector={ZONE: ZONE3, ITYPE: "ml.c5.xlarge"},
                prefer=[req(ZONE, "NotIn", "unknown"), req(ITYPE, "NotIn", "unknown")],
            )
        ),
        Expect(scheduled=("p",), labels={ZONE: ZONE3, ITYPE: "ml.c5.xlarge"}),
        WELL_KNOWN,
    ),
    _c(
        "should not schedule pods with nodePool which is not ready ",
        "logic-nodepool-not-ready",
        world(pending("p"), pools=[not_ready(nodepool())]),
        Expect(unschedulable=("p",)),
        LOGIC,
    ),
    _c(
        "should not schedule pods that have node selectors with In operator and undefined key",
        "logic-in-undefined-key",
        _keyed(pending("p", req("undefined-key", "In", "test-value"))),
        Expect(unschedulable=("p",)),
        LOGIC,
    ),
    _c(
        "should schedule pods that have node selectors with NotIn operator and undefined key",
        "logic-notin-undefined-key",
        _keyed(pending("p", req("undefined-key", "NotIn", "test-value"))),
        Expect(scheduled=("p",)),
        LOGIC,
    ),
    _c(
        "should not schedule pods that have node selectors with Exists operator and undefined key",
        "logic-exists-undefined-key",
        _keyed(pending("p", req("undefined-key", "Exists"))),
        Expect(unschedulable=("p",)),
        LOGIC,
    ),
    _c(
        "should schedule pods that with DoesNotExists operator and undefined key",
        "logic-doesnotexist-undefined-key",
        _keyed(pending("p", req("undefined-key", "DoesNotExist"))),
        Expect(scheduled=("p",)),
        LOGIC,
    ),
    _c(
        "should schedule unconstrained pods that don't have matching node selectors",
        "logic-unconstrained",
        _keyed(pending("p")),
        Expect(scheduled=("p",)),
        LOGIC,
    ),
    _c(
        "should schedule pods that have node selectors with matching value and In operator",
        "logic-in-matching",
        _keyed(pending("p", req(TEST_KEY, "In", "test-value"))),
        Expect(scheduled=("p",)),
        LOGIC,
    ),
    _c(
        "should not schedule pods that have node selectors with matching value and NotIn operator",
        "logic-notin-matching",
        _labelled(pending("p", req(TEST_KEY, "NotIn", "test-value"))),
        Expect(unschedulable=("p",)),
        LOGIC,
    ),
    _c(
        "should schedule the pod with Exists operator and defined key",
        "logic-exists-defined",
        _keyed(pending("p", req(TEST_KEY, "Exists"))),
        Expect(scheduled=("p",)),
        LOGIC,
    ),
    _c(
        "should not schedule the pod with DoesNotExists operator and defined key",
        "logic-doesnotexist-defined",
        _keyed(pending("p", req(TEST_KEY, "DoesNotExist"))),
        Expect(unschedulable=("p",)),
        LOGIC,
    ),
    _c(
        "should not schedule pods that have node selectors with different value and In operator",
        "logic-in-different",
        _labelled(pending("p", req(TEST_KEY, "In", "another-value"))),
        Expect(unschedulable=("p",)),
        LOGIC,
    ),
    _c(
        "should schedule pods that have node selectors with different value and NotIn operator",
        "logic-notin-different",
        _labelled(pending("p", req(TEST_KEY, "NotIn", "another-value"))),
        Expect(scheduled=("p",), labels={TEST_KEY: "test-value"}),
        LOGIC,
    ),
    _c(
        "should schedule compatible pods to the same node",
        "logic-compatible-same-node",
        _keyed(pending("a", req(TEST_KEY, "In", "test-value")), pending("b", req(TEST_KEY, "NotIn", "another-value"))),
        Expect(scheduled=("a", "b"), same_node=("a", "b"), new_nodes=1),
        LOGIC,
    ),
    _c(
        "should schedule incompatible pods to the different node",
        "logic-incompatible-apart",
        _keyed(pending("a", req(TEST_KEY, "In", "test-value")), pending("b", req(TEST_KEY, "In", "another-value"))),
        Expect(scheduled=("a", "b"), apart=("a", "b"), new_nodes=2),
        LOGIC,
    ),
    _c(
        "Exists operator should not overwrite the existing value",
        "logic-exists-keeps-value",
        world(pending("p", req(ZONE, "In", "non-existent-zone"), req(ZONE, "Exists"))),
        Expect(unschedulable=("p",)),
        LOGIC,
    ),
    _c(
        "should not relax the final term",
        "fallback-required-final-term",
        world(
            pending("p", req(ZONE, "In", "invalid")),
            requirements=[*_zones(ZONE1), req(ITYPE, "In", "ml.m5.2xlarge")],
        ),
        Expect(unschedulable=("p",)),
        "Preferential Fallback/Required",
    ),
    _c(
        "should relax multiple terms",
        "fallback-required-or-terms",
        world(
            pending(
                "p",
                spec={
                    "affinity": requires(
                        [req(ZONE, "In", "invalid")],
                        [req(ZONE, "In", "invalid")],
                        [req(ZONE, "In", ZONE1)],
                        [req(ZONE, "In", ZONE2)],
                    )
                },
            )
        ),
        Expect(scheduled=("p",), labels={ZONE: ZONE1}),
        "Preferential Fallback/Required",
    ),
    _c(
        "should relax all terms",
        "fallback-preferred-relax-all",
        world(
            pending(
                "p",
                spec={
                    "affinity": requires(preferred=[(1, [req(ZONE, "In", "invalid")]), (1, [req(ITYPE, "In", "x")])])
                },
            )
        ),
        Expect(scheduled=("p",)),
        "Preferential Fallback/Preferred",
    ),
    _c(
        "should relax to use lighter weights",
        "fallback-preferred-lighter-weights",
        world(
            pending(
                "p",
                spec={
                    "affinity": requires(
                        preferred=[
                            (100, [req(ITYPE, "In", "test-zone-3")]),
                            (50, [req(ZONE, "In", ZONE2)]),
                            (1, [req(ZONE, "In", ZONE1)]),
                        ]
                    )
                },
            ),
            requirements=_zones(ZONE1, ZONE2),
        ),
        Expect(scheduled=("p",), labels={ZONE: ZONE2}),
        "Preferential Fallback/Preferred",
    ),
    _c(
        "should schedule even if preference is conflicting with requirement",
        "fallback-preference-conflicts-requirement",
        world(pending("p", req(ZONE, "In", ZONE3), prefer=[req(ZONE, "NotIn", ZONE3)])),
        Expect(scheduled=("p",), labels={ZONE: ZONE3}),
        "Preferential Fallback/Preferred",
    ),
    _c(
        "should schedule even if preference requirements are conflicting",
        "fallback-preferences-conflict",
        world(pending("p", prefer=[req(ZONE, "In", "invalid"), req(ZONE, "NotIn", "invalid")])),
        Expect(scheduled=("p",)),
        "Preferential Fallback/Preferred",
    ),
    _c(
        "should not schedule pods that have node selectors with restricted labels",
        "validation-restricted-label",
        world(pending("p", req(HOSTNAME, "In", "test"))),
        Expect(unschedulable=("p",), new_nodes=0),
        VALIDATION,
    ),
    _c(
        "should not schedule pods that have node selectors with restricted domains",
        "validation-restricted-domain",
        world(pending("p", req("karpenter.sh/test", "In", "test"))),
        Expect(unschedulable=("p",), new_nodes=0),
        VALIDATION,
    ),
    _c(
        "should schedule pods that have node selectors with label in the kubernetes domains",
        "validation-kubernetes-domains",
        # the plan contract does not list a new node's labels, so the pod asks them: it fits only if the node has them
        world(
            pending("p", req("kubernetes.io/test", "In", "test-value"), req("k8s.io/test", "In", "test-value")),
            requirements=[req("kubernetes.io/test", "In", "test-value"), req("k8s.io/test", "In", "test-value")],
        ),
        Expect(scheduled=("p",)),
        VALIDATION,
    ),
    _c(
        "should schedule pods that have node selectors with label in wellknown label list",
        "validation-wellknown-labels",
        # upstream's arm64 and spot pods are left out: the ml.* catalog has no arm64 type and HyperPod no spot
        world(
            pending("zone", selector={ZONE: ZONE1}),
            pending("type", selector={ITYPE: "ml.m5.2xlarge"}),
            pending("os", selector={"kubernetes.io/os": "linux"}),
        ),
        Expect(scheduled=("zone", "type", "os")),
        VALIDATION,
    ),
]
