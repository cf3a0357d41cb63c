"""Every state-machine task sample in ``events/provision`` and ``events/deprovision`` (what ``sam local invoke -e``
takes), and every drill input in ``events/drill``, through the real handlers against the emulators: a node is brought up
first and the samples' node name is replaced by it, so each step acts on something real."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hpa_testkit.pytest_aws import Stack

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_NODE = "hyperpod-i-0a1b2c3d4e5f60718"
TASKS = sorted([*(ROOT / "events" / "provision").glob("*.json"), *(ROOT / "events" / "deprovision").glob("*.json")])
DRILLS = sorted((ROOT / "events" / "drill").glob("*.json"))


def _node(stack: Stack, name: str) -> dict[str, Any]:
    return next(n for n in stack.kube.list("v1", "Node") if n["metadata"]["name"] == name)


def _tainted(stack: Stack, name: str) -> bool:
    spec = _node(stack, name).get("spec") or {}
    return bool(spec.get("unschedulable")) and any(
        t.get("key") == "karpenter.sh/disrupted" for t in spec.get("taints") or []
    )


Check = Callable[[dict[str, Any], Stack, str], bool]
EXPECT: dict[str, Check] = {
    "scale": lambda r, s, n: r["targetCount"] == 3 and len(r["logicalIds"]) == 2,
    "check": lambda r, s, n: r["ready"] is False,
    "give-back": lambda r, s, n: r["status"] == "gave-back" and r["backoffSeconds"] > 0,
    "finish": lambda r, s, n: (
        r["status"] == "ready" and _node(s, n)["metadata"]["labels"].get("karpenter.sh/nodepool") == "gpunodepool"
    ),
    "drill-plan": lambda r, s, n: r["dryRun"] is True and r["summary"].startswith("would add 1 node"),
    "drill-scale-back": lambda r, s, n: r["deprovision"]["nodes"] == [n] and r["deprovision"]["reason"] == "Drill",
    "cordon": lambda r, s, n: r["nodes"] == [n] and _tainted(s, n),
    "drain": lambda r, s, n: r["drained"] is True and r["nodes"] == [n],
    "delete": lambda r, s, n: r["deleted"] == [n] and not r["failed"],
    "confirm": lambda r, s, n: r["gone"] is False and r["left"] == [n],
    "rollback": lambda r, s, n: r["rolledBack"] == [n] and not _tainted(s, n),
}
"""What each sample's result must show, by the sample's name."""


def _one_node(stack: Stack) -> str:
    stack.seed()
    out = stack.run(
        "provision",
        {"cluster": "hyperpod-eks-demo", "instanceGroup": "auto-g6-az1", "count": 1, "claimId": "seed", "pods": []},
    )
    assert out["status"] == "SUCCEEDED" and out["output"]["status"] == "ready", out
    return str(out["output"]["nodes"][0])


def test_every_task_sample_has_an_expectation() -> None:
    assert sorted(p.stem for p in TASKS) == sorted(EXPECT)


@pytest.mark.parametrize("path", TASKS, ids=[f"{p.parent.name}/{p.stem}" for p in TASKS])
def test_every_task_sample(stack: Stack, path: Path) -> None:
    real = _one_node(stack)
    event = json.loads(path.read_text().replace(SAMPLE_NODE, real))
    if path.stem in ("rollback", "drain", "delete"):
        stack.invoke("deprovision", {**event, "action": "cordon"})  # the state these steps start from
    result = stack.invoke(path.parent.name, event)
    assert isinstance(result, dict) and EXPECT[path.stem](result, stack, real), result


@pytest.mark.parametrize("path", DRILLS, ids=[p.stem for p in DRILLS])
def test_every_drill_sample_in_dry_run(stack: Stack, path: Path) -> None:
    real = _one_node(stack)
    body = {**json.loads(path.read_text().replace(SAMPLE_NODE, real)), "cluster": "hyperpod-eks-demo", "dryRun": True}
    out = stack.run("drill", body)
    assert out["status"] == "SUCCEEDED", out
    assert "would" in json.dumps(out["output"]), out["output"]
    assert [n["metadata"]["name"] for n in stack.kube.list("v1", "Node")] == [real], "a dry run changes nothing"
