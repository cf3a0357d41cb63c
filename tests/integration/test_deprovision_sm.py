"""The real deprovision and drill state machines in moto's ASL interpreter, tasks routed to the real handlers, against the
HyperPod and Kubernetes emulators on a simulated clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hpa_testkit.pods import pdb, pending_pod, running_pod
from hpa_testkit.pytest_aws import Stack

CLUSTER = "hyperpod-eks-demo"
GROUP = "auto-g6-az1"
TERMINATION = "karpenter.sh/nodeclaim-termination-timestamp"


def up(stack: Stack, count: int = 2) -> list[str]:
    out = stack.run(
        "provision", {"cluster": CLUSTER, "instanceGroup": GROUP, "count": count, "claimId": "seed", "pods": []}
    )
    assert out["status"] == "SUCCEEDED" and out["output"]["status"] == "ready", out
    return sorted(out["output"]["nodes"])


def down(stack: Stack, nodes: list[str], reason: str = "Underutilized", **extra: Any) -> dict[str, Any]:
    return stack.run("deprovision", {"cluster": CLUSTER, "nodes": nodes, "reason": reason, **extra})


def node(stack: Stack, name: str) -> dict[str, Any] | None:
    found = [n for n in stack.kube.list("v1", "Node") if n["metadata"]["name"] == name]
    return found[0] if found else None


def target(stack: Stack) -> int:
    return stack.aws.hyperpod.clusters[CLUSTER].groups[GROUP].target


def test_drain_and_delete_to_zero(stack: Stack) -> None:
    a, b = up(stack)
    stack.kube.apply(running_pod("web-1", a, {"app": "web"}))
    stack.kube.apply(running_pod("ds-1", a, owner_kind="DaemonSet"))
    out = down(stack, [a, b], reason="ScaleToZero")
    assert out["status"] == "SUCCEEDED", out
    assert node(stack, a) is None and node(stack, b) is None
    assert target(stack) == 0, "scale to zero: the group has no instances left"
    assert stack.kube.store.evictions == [("default", "web-1")], "DaemonSet pods are not evicted"


def test_pdb_blocked_drain_waits_then_proceeds(stack: Stack) -> None:
    a, b = up(stack)
    stack.kube.apply(pdb("web", {"app": "web"}, min_available=2))
    stack.kube.apply(running_pod("web-1", a, {"app": "web"}))
    stack.kube.apply(running_pod("web-2", b, {"app": "web"}))
    # two minutes into the drain a third replica becomes ready on the other node: the PDB then allows one eviction
    stack.clock.call_at(120, lambda: stack.kube.apply(running_pod("web-3", b, {"app": "web"})))
    started = stack.clock.now()
    out = down(stack, [a])
    assert out["status"] == "SUCCEEDED", out
    drains = [e for e in out["history"] if e.get("stateEnteredEventDetails", {}).get("name") == "Drain"]
    assert len(drains) >= 3, "the drain retried while the PDB refused"
    assert stack.clock.now() - started >= 120
    assert node(stack, a) is None and node(stack, b) is not None
    assert stack.kube.store.evictions == [("default", "web-1")]
    assert stack.kube.store.pdb_violations == []


def test_do_not_disrupt_stops_that_node_and_untaints_it(stack: Stack) -> None:
    a, b = up(stack)
    stack.kube.apply(running_pod("train-0", a, {"job": "t"}, annotations={"karpenter.sh/do-not-disrupt": "true"}))
    out = down(stack, [a, b])
    assert out["status"] == "SUCCEEDED", out
    kept = node(stack, a)
    assert kept is not None, "the protected node stays"
    assert not kept["spec"].get("unschedulable") and not [
        t for t in kept["spec"].get("taints") or [] if t["key"] == "karpenter.sh/disrupted"
    ]
    assert node(stack, b) is None, "the other node still goes"
    assert [p["metadata"]["name"] for p in stack.kube.list("v1", "Pod")] == ["train-0"]
    assert stack.kube.store.evictions == []


def test_do_not_disrupt_arriving_during_the_drain_aborts_that_node(stack: Stack) -> None:
    (a,) = up(stack, 1)
    stack.kube.apply(pdb("web", {"app": "web"}, min_available=1))
    stack.kube.apply(running_pod("web-1", a, {"app": "web"}))
    stack.clock.call_at(
        30, lambda: stack.kube.apply(running_pod("train-0", a, annotations={"karpenter.sh/do-not-disrupt": "true"}))
    )
    out = down(stack, [a])
    assert out["status"] == "SUCCEEDED", out
    kept = node(stack, a)
    assert kept is not None and not kept["spec"].get("unschedulable")
    assert target(stack) == 1


def pod_names(stack: Stack) -> list[str]:
    return sorted(p["metadata"]["name"] for p in stack.kube.list("v1", "Pod"))


def with_grace(pod: dict[str, Any], seconds: int) -> dict[str, Any]:
    pod["spec"]["terminationGracePeriodSeconds"] = seconds
    return pod


def expire(stack: Stack, a: str, watch: tuple[int, ...]) -> tuple[dict[str, Any], dict[int, list[str]], float]:
    """Expire node ``a`` with a 600 s terminationGracePeriod; the pods seen ``watch`` seconds in, and the time taken."""
    seen: dict[int, list[str]] = {}
    for t in watch:
        stack.clock.call_at(t, lambda t=t: seen.setdefault(t, pod_names(stack)))
    started = stack.clock.now()
    out = down(stack, [a], reason="Expired", terminationGracePeriodSeconds=600)
    assert out["status"] == "SUCCEEDED", out
    return out, seen, stack.clock.now() - started


def test_expiry_is_forceful_but_still_honours_pdbs_until_the_grace_period(stack: Stack) -> None:
    (a,) = up(stack, 1)
    stack.kube.apply(pdb("web", {"app": "web"}, min_available=1))
    stack.kube.apply(running_pod("web-1", a, {"app": "web"}, annotations={"karpenter.sh/do-not-disrupt": "true"}))
    _out, seen, took = expire(stack, a, (300, 560))
    # Karpenter deletes the pod its own terminationGracePeriodSeconds (30 s when unset) before the node's grace ends
    assert seen[300] == ["web-1"] and seen[560] == ["web-1"], seen
    assert took >= 570
    assert node(stack, a) is None and stack.kube.store.evictions == []


def test_expiry_never_evicts_a_do_not_disrupt_pod_it_deletes_it_when_the_grace_period_ends(stack: Stack) -> None:
    (a,) = up(stack, 1)
    protected = running_pod("train-0", a, {"job": "t"}, annotations={"karpenter.sh/do-not-disrupt": "true"})
    stack.kube.apply(with_grace(protected, 120))
    stack.kube.apply(running_pod("web-1", a, {"app": "web"}))
    _out, seen, took = expire(stack, a, (60, 470))
    assert stack.kube.store.evictions == [("default", "web-1")], "the unprotected pod is evicted, train-0 never is"
    assert seen[60] == ["train-0"] and seen[470] == ["train-0"], "train-0 runs until 600 - 120 s into the drain"
    assert took >= 480 and node(stack, a) is None
    assert stack.kube.store.pdb_violations == []


def test_expiry_keeps_the_grace_period_deadline_of_an_earlier_execution(stack: Stack) -> None:
    """A drain is handed back after DRAIN_BOUND_SECONDS and decided again: the node's terminationGracePeriod counts
    from the first drain (written on the node as Karpenter's ``karpenter.sh/nodeclaim-termination-timestamp``), or a
    grace period longer than one execution's bound could never end. Here an earlier execution began 500 s ago."""
    (a,) = up(stack, 1)
    protected = running_pod("train-0", a, {"job": "t"}, annotations={"karpenter.sh/do-not-disrupt": "true"})
    stack.kube.apply(with_grace(protected, 30))
    deadline = datetime.fromtimestamp(stack.clock.now() + 100, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raw = node(stack, a)
    assert raw is not None
    meta = {k: v for k, v in raw["metadata"].items() if k != "resourceVersion"}
    annotations = {**meta.get("annotations", {}), "karpenter.sh/nodeclaim-termination-timestamp": deadline}
    stack.kube.apply({**raw, "metadata": {**meta, "annotations": annotations}})
    _out, seen, took = expire(stack, a, (30,))
    assert seen[30] == ["train-0"]
    assert 70 <= took < 200, "deleted at the first drain's deadline less 30 s (70 s in), not 570 s in"
    assert node(stack, a) is None


def test_expiry_writes_its_deadline_on_the_node(stack: Stack) -> None:
    (a,) = up(stack, 1)
    stack.kube.apply(running_pod("train-0", a, {"job": "t"}, annotations={"karpenter.sh/do-not-disrupt": "true"}))
    written: list[str] = []

    def look() -> None:
        raw = node(stack, a) or {}
        written.append((raw.get("metadata", {}).get("annotations") or {}).get(TERMINATION, ""))

    stack.clock.call_at(60, look)
    started = stack.clock.now()
    expire(stack, a, ())
    assert written and datetime.fromisoformat(written[0].replace("Z", "+00:00")).timestamp() == int(started) + 600


def test_expiry_deletes_a_pdb_blocked_pod_only_when_the_grace_period_ends(stack: Stack) -> None:
    (a,) = up(stack, 1)
    stack.kube.apply(pdb("web", {"app": "web"}, min_available=1))
    stack.kube.apply(with_grace(running_pod("web-1", a, {"app": "web"}), 120))
    _out, seen, took = expire(stack, a, (470, 500))
    # deleted at 600 - 120 s, so that it has its whole grace period before the node goes (podDeleteTimeWithGracePeriod)
    assert seen[470] == ["web-1"] and seen[500] == [], seen
    assert took >= 480
    assert stack.kube.store.evictions == [] and node(stack, a) is None


def test_a_voluntary_disruption_never_overrides_a_pdb_it_gives_the_node_back(stack: Stack) -> None:
    (a,) = up(stack, 1)
    stack.kube.apply(pdb("web", {"app": "web"}, min_available=1))
    stack.kube.apply(running_pod("web-1", a, {"app": "web"}))
    started = stack.clock.now()
    out = down(stack, [a], reason="Underutilized", terminationGracePeriodSeconds=600)
    assert out["status"] == "SUCCEEDED", out
    assert stack.clock.now() - started >= 600, "the drain kept trying until the timeout"
    assert a in out["output"]["drain"]["aborted"] and "PodDisruptionBudget" in out["output"]["drain"]["aborted"][a]
    kept = node(stack, a)
    assert kept is not None and not kept["spec"].get("unschedulable"), "the node is back in service"
    assert not any(t.get("key") == "karpenter.sh/disrupted" for t in kept["spec"].get("taints") or [])
    assert [p["metadata"]["name"] for p in stack.kube.list("v1", "Pod")] == ["web-1"]
    assert stack.kube.store.pdb_violations == [] and target(stack) == 1


def test_partial_delete_failure_rolls_back_the_refused_node(stack: Stack) -> None:
    a, b = up(stack)
    refused = a[len("hyperpod-") :]
    stack.aws.hyperpod.delete_failures(ids={refused})
    out = down(stack, [a, b])
    assert out["status"] == "SUCCEEDED", out
    assert out["output"]["delete"]["failed"] and a in out["output"]["delete"]["failed"]
    kept = node(stack, a)
    assert kept is not None and not kept["spec"].get("unschedulable"), "the refused node is back in service"
    assert node(stack, b) is None
    assert target(stack) == 1


def test_a_node_back_in_service_after_a_refused_delete_loses_its_termination_deadline(stack: Stack) -> None:
    """Soak seed 6907: an expired node's delete was refused, so it went back into service with the first drain's
    deadline still on it; a do-not-disrupt pod landed on it, and the next expiry deleted that pod at the stale
    deadline, 75 s after it arrived. Back in service, the node's grace period starts again with its next drain."""
    (a,) = up(stack, 1)
    stack.aws.hyperpod.delete_failures(ids={a[len("hyperpod-") :]})
    first = down(stack, [a], reason="Expired", terminationGracePeriodSeconds=600)
    assert first["status"] == "SUCCEEDED" and a in first["output"]["delete"]["failed"], first
    raw = node(stack, a)
    assert raw is not None and not raw["spec"].get("unschedulable"), "the refused node is back in service"
    assert TERMINATION not in (raw["metadata"].get("annotations") or {}), "and without the first drain's deadline"

    stack.aws.hyperpod.delete_failures(ids=set())
    stack.clock.advance(900)  # the first deadline has long passed when a protected pod lands on the node
    stack.kube.apply(running_pod("train-0", a, {"job": "t"}, annotations={"karpenter.sh/do-not-disrupt": "true"}))
    _out, seen, took = expire(stack, a, (300,))
    assert seen[300] == ["train-0"] and took >= 570, "the pod gets the whole grace period from this drain"


def test_unknown_nodes_are_already_gone(stack: Stack) -> None:
    out = down(stack, ["hyperpod-i-0000000000000000"])
    assert out["status"] == "SUCCEEDED"
    assert out["output"]["cordon"]["gone"] == ["hyperpod-i-0000000000000000"]


def test_drill_dry_run_changes_nothing(stack: Stack) -> None:
    before = list(stack.aws.hyperpod.call_log)
    out = stack.run("drill", {"drill": "scale-group", "group": GROUP, "count": 2, "dryRun": True})
    assert out["status"] == "SUCCEEDED", out
    assert out["output"]["dryRun"] is True and out["output"]["drill"] == "scale-group"
    writes = [c for c in stack.aws.hyperpod.call_log[len(before) :] if not c[1].startswith(("Describe", "List"))]
    assert writes == []


def test_drill_scale_group_up_and_back(stack: Stack) -> None:
    out = stack.run("drill", {"drill": "scale-group", "group": GROUP, "count": 2})
    assert out["status"] == "SUCCEEDED", out
    assert target(stack) == 0
    assert stack.kube.list("v1", "Node") == []


def test_the_same_drill_run_again_changes_the_cluster_again(stack: Stack) -> None:
    """Issue 11, defect 1: drill children were named after the drill's input only, so the same drill run a second time
    collided with the first run's closed executions (kept 90 days) and failed without doing anything."""
    for _ in range(2):
        before = len(stack.aws.hyperpod.call_log)
        out = stack.run("drill", {"drill": "scale-group", "group": GROUP, "count": 1})
        assert out["status"] == "SUCCEEDED", out
        added = [c for c in stack.aws.hyperpod.call_log[before:] if c[1] == "BatchAddClusterNodes" and not c[3]]
        assert added, "this run added its node"
        assert target(stack) == 0 and stack.kube.list("v1", "Node") == []
    assert len(stack.executions("provision")) == 2 and len(stack.executions("deprovision")) == 2


def test_a_replace_node_drill_gives_the_replacement_the_replaced_nodes_nodepool(stack: Stack) -> None:
    """Found by the whole-system soak (seed 2034): the drill's replacement was provisioned without a NodePool, so it
    never got the karpenter.sh/nodepool label, and consolidation never removed it once idle: it billed for good."""
    (old,) = up(stack, 1)
    labelled = node(stack, old)
    assert labelled is not None
    labelled["metadata"]["labels"]["karpenter.sh/nodepool"] = "gpunodepool"
    labelled["metadata"].pop("resourceVersion", None)
    stack.kube.apply(labelled)
    out = stack.run("drill", {"drill": "replace-node", "node": old})
    assert out["status"] == "SUCCEEDED", out
    (new,) = [n for n in stack.kube.list("v1", "Node")]
    assert new["metadata"]["name"] != old
    assert new["metadata"]["labels"].get("karpenter.sh/nodepool") == "gpunodepool"
    assert new["metadata"]["labels"].get("karpenter.sh/initialized") == "true"


def test_a_scale_group_drill_labels_its_nodes_with_a_nodepool_of_the_group(stack: Stack) -> None:
    """Found by the whole-system soak (seed 2035): a scale-group drill whose scale-back was refused (a PDB-protected pod
    had landed on its node) left an unlabelled node, which consolidation never removed. Its nodes now carry a NodePool
    whose HyperpodNodeClass lists the group (the seed's gpunodepool lists auto-g6-az1)."""
    stack.seed()
    stack.aws.hyperpod.delete_failures(rate=1.0)  # the scale-back cannot delete: the drill fails, its node stays
    out = stack.run("drill", {"drill": "scale-group", "group": GROUP, "count": 1})
    assert out["status"] == "FAILED" or target(stack) == 1, out
    (left,) = stack.kube.list("v1", "Node")
    assert left["metadata"]["labels"].get("karpenter.sh/nodepool") == "gpunodepool"


def test_drill_drain_group_to_zero(stack: Stack) -> None:
    up(stack, 2)
    out = stack.run("drill", {"drill": "drain-group", "group": GROUP})
    assert out["status"] == "SUCCEEDED", out
    assert target(stack) == 0 and stack.kube.list("v1", "Node") == []


def test_drill_command_follows_the_execution(stack: Stack, capsys: Any) -> None:
    import json as _json

    from hyperpod_autoscaler.cli import main

    code = main(
        [
            "drill",
            "scale-group",
            "--group",
            GROUP,
            "--count",
            "1",
            "--dry-run",
            "--state-machine-arn",
            stack.machines["drill"],
        ]
    )
    assert code == 0
    out = _json.loads(capsys.readouterr().out)
    assert out["dryRun"] is True and "would add 1 node(s) to auto-g6-az1" in out["summary"]
    assert main(["drill", "replace-node", "--state-machine-arn", stack.machines["drill"]]) == 2


def test_scale_to_zero_gives_the_node_back_when_a_pod_goes_pending_mid_drain(stack: Stack) -> None:
    (a,) = up(stack, 1)
    stack.kube.apply(pdb("web", {"app": "web"}, min_available=1))
    stack.kube.apply(running_pod("web-1", a, {"app": "web"}))
    stack.clock.call_at(60, lambda: stack.kube.apply(pending_pod("job-1")))  # fits on the node being drained
    stack.clock.call_at(120, lambda: stack.kube.apply(running_pod("web-2", "elsewhere", {"app": "web"})))
    out = down(stack, [a], reason="ScaleToZero")
    assert out["status"] == "SUCCEEDED", out
    assert stack.kube.store.evictions == [("default", "web-1")], "the drain ran"
    assert a in out["output"]["delete"]["aborted"] and "job-1" in out["output"]["delete"]["aborted"][a]
    kept = node(stack, a)
    assert kept is not None and not kept["spec"].get("unschedulable"), "the node is back in service for job-1"
    assert not any(t.get("key") == "karpenter.sh/disrupted" for t in kept["spec"].get("taints") or [])
    assert target(stack) == 1 and not [c for c in stack.aws.hyperpod.call_log if c[1] == "BatchDeleteClusterNodes"]


def test_scale_to_zero_does_not_cordon_a_node_a_pending_pod_fits_on(stack: Stack) -> None:
    a, b = up(stack)
    stack.kube.apply(pending_pod("job-1"))
    out = down(stack, [a, b], reason="Empty")
    assert out["status"] == "SUCCEEDED", out
    assert list(out["output"]["cordon"]["aborted"]) == [a], "one pending pod keeps one node"
    assert node(stack, a) is not None and not node(stack, a)["spec"].get("unschedulable")  # type: ignore[index]
    assert node(stack, b) is None and target(stack) == 1


def test_an_empty_node_that_runs_a_pod_again_is_not_cordoned(stack: Stack) -> None:
    (a,) = up(stack, 1)
    stack.kube.apply(running_pod("web-1", a, {"app": "web"}))
    out = down(stack, [a], reason="Empty")
    assert out["status"] == "SUCCEEDED", out
    assert "no longer empty" in out["output"]["cordon"]["aborted"][a]
    assert stack.kube.store.evictions == [] and node(stack, a) is not None and target(stack) == 1


def test_a_node_that_is_not_a_hyperpod_node_is_never_cordoned(stack: Stack) -> None:
    (a,) = up(stack, 1)
    foreign = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "ip-10-0-1-7.ec2.internal", "labels": {}}}
    stack.kube.apply(foreign)
    stack.kube.apply(running_pod("web-1", "ip-10-0-1-7.ec2.internal", {"app": "web"}))
    out = down(stack, ["ip-10-0-1-7.ec2.internal", a])
    assert out["status"] == "SUCCEEDED", out
    why = out["output"]["cordon"]["aborted"]["ip-10-0-1-7.ec2.internal"]
    assert "not a HyperPod node" in why and "ip-10-0-1-7.ec2.internal" in why
    kept = node(stack, "ip-10-0-1-7.ec2.internal")
    assert (
        kept is not None
        and not (kept.get("spec") or {}).get("unschedulable")
        and not (kept.get("spec") or {}).get("taints")
    )
    assert stack.kube.store.evictions == [], "nothing drained from it"
    assert node(stack, a) is None, "the HyperPod node still goes"


def test_an_eviction_answered_409_is_tried_again_not_taken_as_gone(stack: Stack) -> None:
    """Whole-system soak (seed 6253): an eviction answered 409 Conflict counted as "gone", so the drain reported the
    node empty while its pod still ran there, and the node was deleted with the pod (its PDB allowed no disruption).
    Only a 404 says the pod is gone; upstream (Karpenter's eviction queue) reads 409 as gone only for an eviction that
    carries the pod's UID as a precondition, which a 409 then means another pod of that name."""
    a, b = up(stack)
    stack.kube.apply(pdb("web", {"app": "web"}, min_available=1))
    stack.kube.apply(running_pod("web-1", a, {"app": "web"}))
    stack.kube.apply(running_pod("web-2", b, {"app": "web"}))
    stack.kube.fail(409, count=1, methods={"POST"}, path="/eviction")
    out = down(stack, [a])
    assert out["status"] == "SUCCEEDED", out
    assert stack.kube.store.evictions == [("default", "web-1")], "evicted once the conflict was over"
    assert stack.kube.store.pdb_violations == [], "the node was not deleted under its pod"
    assert node(stack, a) is None
