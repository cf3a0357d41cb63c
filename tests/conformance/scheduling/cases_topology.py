"""Cases from Karpenter's scheduling/topology_test.go: topology spread (zone, hostname) and pod (anti-)affinity."""

from __future__ import annotations

from typing import Any

from tests.unit.engine_fixtures import node, nodepool, pod

from .model import (
    HOSTNAME,
    TOPOLOGY,
    ZONE,
    ZONE1,
    ZONE2,
    ZONE3,
    Case,
    Expect,
    pending,
    pod_term,
    req,
    requires,
    spread,
    spread_pods,
    with_affinity,
    world,
)

S2 = {"security": "s2"}


def _t(it: str, name: str, objects: list[dict[str, Any]], expect: Expect) -> Case:
    return Case(name, (TOPOLOGY, f"Topology/{it}"), objects, expect)


def _names(n: int, prefix: str = "s") -> tuple[str, ...]:
    return tuple(f"{prefix}-{i}" for i in range(n))


def _occupied(zone: str, group: str, pods: int = 1) -> list[dict[str, Any]]:
    """A node in ``zone`` (of ``group``) full with ``pods`` running 1-CPU pods of the spread group."""
    name = f"node-{zone}"
    running = [pod(f"{name}-{i}", labels={"test": "test"}, node=name) for i in range(pods)]
    return [node(name, group, cpu=f"{pods}.2"), *running]


CASES = [
    _t(
        "should ignore unknown topology keys",
        "unknown-topology-key",
        world(*spread_pods(1, spread("unknown")), pending("plain")),
        Expect(unschedulable=("s-0",), scheduled=("plain",)),
    ),
    _t(
        "should not spread when a nil label selector is defined",
        "nil-label-selector",
        world(*spread_pods(2, {"topologyKey": ZONE, "maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"})),
        Expect(scheduled=_names(2), skew=(ZONE, (2,))),
    ),
    _t(
        "Zonal/should balance pods across zones (match labels)",
        "zonal-balance-labels",
        world(*spread_pods(4, spread(ZONE))),
        Expect(scheduled=_names(4), skew=(ZONE, (1, 1, 2))),
    ),
    _t(
        "Zonal/should balance pods across zones (match expressions)",
        "zonal-balance-expressions",
        world(
            *spread_pods(
                4,
                spread(
                    ZONE, labelSelector={"matchExpressions": [{"key": "test", "operator": "In", "values": ["test"]}]}
                ),
            )
        ),
        Expect(scheduled=_names(4), skew=(ZONE, (1, 1, 2))),
    ),
    _t(
        "Zonal/should respect NodePool zonal constraints",
        "zonal-nodepool-constraints",
        world(*spread_pods(4, spread(ZONE)), requirements=[req(ZONE, "In", ZONE1, ZONE2, ZONE3)]),
        Expect(scheduled=_names(4), skew=(ZONE, (1, 1, 2))),
    ),
    _t(
        "Zonal/should respect NodePool zonal constraints (subset) with requirements",
        "zonal-nodepool-subset",
        world(*spread_pods(4, spread(ZONE)), requirements=[req(ZONE, "In", ZONE1, ZONE2)]),
        Expect(scheduled=_names(4), skew=(ZONE, (2, 2))),
    ),
    _t(
        "Zonal/should respect NodePool zonal constraints (subset) with labels",
        "zonal-nodepool-template-label",
        world(*spread_pods(4, spread(ZONE)), labels={ZONE: ZONE1}),
        Expect(scheduled=_names(4), labels={ZONE: ZONE1}, skew=(ZONE, (4,))),
    ),
    _t(
        "Zonal/should respect NodePool zonal constraints (subset) with requirements and labels",
        "zonal-nodepool-requirements-and-label",
        world(*spread_pods(4, spread(ZONE)), labels={ZONE: ZONE1}, requirements=[req(ZONE, "In", ZONE1, ZONE2)]),
        Expect(scheduled=_names(4), labels={ZONE: ZONE1}, skew=(ZONE, (4,))),
    ),
    _t(
        "Zonal/should respect NodePool zonal constraints (subset) with labels across NodePools",
        "zonal-template-labels-across-nodepools",
        world(
            *spread_pods(4, spread(ZONE)),
            pools=[
                nodepool("a", labels={ZONE: ZONE1}, requirements=[req(ZONE, "In", ZONE1, ZONE2)]),
                nodepool("b", labels={ZONE: ZONE2}),
            ],
        ),
        Expect(scheduled=_names(4), skew=(ZONE, (2, 2))),
    ),
    _t(
        "Combined Zonal Topology and Node Affinity/should limit spread options by nodeSelector",
        "zonal-limited-by-node-selector",
        world(
            *spread_pods(5, spread(ZONE), selector={ZONE: ZONE1}, cpu="0.5"),
            *spread_pods(10, spread(ZONE), selector={ZONE: ZONE2}, cpu="0.5", prefix="s-b"),
        ),
        Expect(scheduled=(*_names(5), *_names(10, "s-b")), skew=(ZONE, (5, 10))),
    ),
    _t(
        "Combined Zonal Topology and Node Affinity/should limit spread options by node requirements",
        "zonal-limited-by-node-requirements",
        world(*spread_pods(10, spread(ZONE), spec={"affinity": requires([req(ZONE, "In", ZONE1, ZONE2)])}, cpu="0.5")),
        Expect(scheduled=_names(10), skew=(ZONE, (5, 5))),
    ),
    _t(
        "Zonal/should not violate max-skew when unsat = do not schedule",
        "zonal-max-skew-do-not-schedule",
        # upstream's first round put one pod in zone 1; here it runs there already
        world(
            *_occupied(ZONE1, "cpu-m5-az1"),
            *spread_pods(10, spread(ZONE), cpu="1.1"),
            requirements=[req(ZONE, "In", ZONE2, ZONE3)],
        ),
        Expect(scheduled=_names(4), unschedulable=tuple(f"s-{i}" for i in range(4, 10)), skew=(ZONE, (1, 2, 2))),
    ),
    _t(
        "Zonal/should schedule to the non-minimum domain if its all that's available",
        "zonal-non-minimum-domain",
        # upstream's first two rounds put one pod in zones 1 and 2; here they run there on full nodes
        world(
            *_occupied(ZONE1, "cpu-m5-az1"),
            *_occupied(ZONE2, "cpu-m5-az2"),
            *spread_pods(10, spread(ZONE, max_skew=5), cpu="1.1"),
            requirements=[req(ZONE, "In", ZONE3)],
        ),
        Expect(scheduled=_names(6), unschedulable=tuple(f"s-{i}" for i in range(6, 10)), skew=(ZONE, (1, 1, 6))),
    ),
    _t(
        "Zonal/should only schedule to minimum domains if already violating max skew",
        "zonal-recover-skew",
        # after upstream's deletions three pods remain in zone 1, on a node with no room left
        world(*_occupied(ZONE1, "cpu-m5-az1", pods=3), *spread_pods(3, spread(ZONE), cpu="1.1")),
        Expect(scheduled=_names(3), skew=(ZONE, (3, 1, 2))),
    ),
    _t(
        "Zonal/should respect minDomains constraints",
        "zonal-min-domains",
        world(*spread_pods(3, spread(ZONE, minDomains=3)), requirements=[req(ZONE, "In", ZONE1, ZONE2)]),
        Expect(scheduled=_names(2), unschedulable=("s-2",), skew=(ZONE, (1, 1))),
    ),
    _t(
        "Zonal/satisfied minDomains constraints (equal) should allow expected pod scheduling",
        "zonal-min-domains-equal",
        world(*spread_pods(11, spread(ZONE, minDomains=3)), requirements=[req(ZONE, "In", ZONE1, ZONE2, ZONE3)]),
        Expect(scheduled=_names(11), skew=(ZONE, (4, 4, 3))),
    ),
    _t(
        "Zonal/satisfied minDomains constraints (greater than minimum) should allow expected pod scheduling",
        "zonal-min-domains-greater",
        world(*spread_pods(11, spread(ZONE, minDomains=2)), requirements=[req(ZONE, "In", ZONE1, ZONE2, ZONE3)]),
        Expect(scheduled=_names(11), skew=(ZONE, (4, 4, 3))),
    ),
    _t(
        "Hostname/should balance pods across nodes",
        "hostname-balance",
        world(*spread_pods(4, spread(HOSTNAME))),
        Expect(scheduled=_names(4), apart=_names(4), new_nodes=4),
    ),
    _t(
        "Hostname/should balance pods on the same hostname up to maxskew",
        "hostname-max-skew-4",
        # upstream's 1-CPU pods are 0.5 here so that four fit the cheapest type (ml.c5.xlarge, 3.92 CPUs)
        world(*spread_pods(4, spread(HOSTNAME, max_skew=4), cpu="0.5")),
        Expect(scheduled=_names(4), same_node=_names(4), new_nodes=1),
    ),
    _t(
        "Pod Affinity/Anti-Affinity/should schedule a pod with empty pod affinity and anti-affinity",
        "empty-pod-affinity",
        world(pending("p", spec={"affinity": {"podAffinity": {}, "podAntiAffinity": {}}})),
        Expect(scheduled=("p",)),
    ),
    _t(
        "Pod Affinity/Anti-Affinity/should respect pod affinity (hostname)",
        "pod-affinity-hostname",
        world(
            *spread_pods(10, spread(HOSTNAME)),
            pending("aff-1", labels=S2),
            with_affinity(pending("aff-2"), "podAffinity", pod_term(HOSTNAME, S2)),
        ),
        Expect(scheduled=("aff-1", "aff-2"), same_node=("aff-1", "aff-2")),
    ),
    _t(
        "Pod Affinity/Anti-Affinity/should respect self pod affinity (hostname)",
        "self-affinity-hostname",
        world(*(with_affinity(pending(f"a-{i}", labels=S2), "podAffinity", pod_term(HOSTNAME, S2)) for i in range(3))),
        Expect(scheduled=_names(3, "a"), same_node=_names(3, "a")),
    ),
    _t(
        "Pod Affinity/Anti-Affinity/should respect self pod affinity (zone)",
        "self-affinity-zone",
        world(*(with_affinity(pending(f"a-{i}", labels=S2), "podAffinity", pod_term(ZONE, S2)) for i in range(3))),
        Expect(scheduled=_names(3, "a"), same_node=_names(3, "a")),
    ),
    _t(
        "Pod Affinity/Anti-Affinity/should allow violation of preferred pod affinity",
        "preferred-affinity-violated",
        world(with_affinity(pending("p"), "podAffinity", pod_term(HOSTNAME, {"foo": "bar"}), weight=50)),
        Expect(scheduled=("p",)),
    ),
    _t(
        "Pod Affinity/Anti-Affinity/should allow violation of preferred pod anti-affinity",
        "preferred-anti-affinity-violated",
        world(
            *(
                with_affinity(pending(f"a-{i}", labels=S2), "podAntiAffinity", pod_term(ZONE, S2), weight=50)
                for i in range(10)
            )
        ),
        Expect(scheduled=_names(10, "a")),
    ),
    _t(
        "Pod Affinity/Anti-Affinity/should separate nodes using simple pod anti-affinity on hostname",
        "anti-affinity-hostname",
        world(pending("aff-1", labels=S2), with_affinity(pending("aff-2"), "podAntiAffinity", pod_term(HOSTNAME, S2))),
        Expect(scheduled=("aff-1", "aff-2"), apart=("aff-1", "aff-2")),
    ),
    _t(
        "Pod Affinity/Anti-Affinity/should not violate pod anti-affinity on zone",
        "anti-affinity-zone-all-taken",
        world(
            *(pending(f"z{i}", cpu="2", labels=S2, selector={ZONE: z}) for i, z in enumerate((ZONE1, ZONE2, ZONE3))),
            with_affinity(pending("aff"), "podAntiAffinity", pod_term(ZONE, S2)),
        ),
        Expect(scheduled=("z0", "z1", "z2"), unschedulable=("aff",)),
    ),
    Case(
        "anti-affinity-zone-topology",
        (TOPOLOGY, "Topology/Pod Affinity/Anti-Affinity/should support pod anti-affinity with a zone topology"),
        world(*(with_affinity(pending(f"s-{i}", labels=S2), "podAntiAffinity", pod_term(ZONE, S2)) for i in range(4))),
        Expect(scheduled=("s-0",), skew=(ZONE, (1,))),
        deliberate_difference=(
            "upstream commits a new node's zone late, so each batch places one of the zone-anti-affine pods; a HyperPod "
            "claim is one group in one zone, so one plan places one pod per zone (and reports the fourth unschedulable)"
        ),
        ours=Expect(scheduled=_names(3), unschedulable=("s-3",), skew=(ZONE, (1, 1, 1))),
    ),
    _t(
        "Pod Affinity/Anti-Affinity/should not schedule pods with affinity to a non-existent pod",
        "affinity-to-missing-pod",
        world(*(with_affinity(pending(f"a-{i}"), "podAffinity", pod_term(ZONE, S2)) for i in range(10))),
        Expect(unschedulable=_names(10, "a"), new_nodes=0),
    ),
    _t(
        "Pod Affinity/Anti-Affinity/should fail to schedule pods with unsatisfiable dependencies",
        "affinity-unsatisfiable",
        world(
            with_affinity(
                pending("db", labels={"type": "db", "spread": "spread"}),
                "podAffinity",
                pod_term(HOSTNAME, {"type": "web", "spread": "spread"}),
            )
        ),
        Expect(unschedulable=("db",), new_nodes=0),
    ),
    _t(
        "Pod Affinity/Anti-Affinity/should filter pod affinity topologies by namespace, no matching pods",
        "affinity-other-namespace",
        world(
            *spread_pods(10, spread(HOSTNAME)),
            pending("aff-1", labels=S2, ns="other-ns-no-match"),
            with_affinity(pending("aff-2"), "podAffinity", pod_term(HOSTNAME, S2)),
        ),
        Expect(scheduled=("aff-1",), unschedulable=("aff-2",)),
    ),
]
