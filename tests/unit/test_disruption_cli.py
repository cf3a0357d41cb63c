"""``hyperpod-autoscaler disruption``: the JSON contract and the text explanation of kept nodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hyperpod_autoscaler.cli import main

from .disruption_fixtures import HOUR, NOW, aged, iso, ready
from .engine_fixtures import node as node_
from .engine_fixtures import nodeclass, nodepool, pod

ROOT = Path(__file__).resolve().parents[2]


def two_gpu_nodes(tmp_path: Path, consolidate_after: str, pod_b: dict[str, Any]) -> Path:
    """A file with two five-hour-old g6.xlarge nodes a and b, ``pod_b`` and a NodePool with ``consolidate_after``."""
    pool = nodepool("default")
    pool["spec"]["disruption"] = {"consolidateAfter": consolidate_after, "budgets": [{"nodes": "100%"}]}
    pool["spec"]["template"]["spec"]["expireAfter"] = "Never"
    docs = [
        nodeclass(groups=["auto-g6-az1", "auto-g6-4xaz2"]),
        pool,
        aged(node_("a", "auto-g6-az1", cpu="4", memory="16Gi", gpu=1), 5 * HOUR),
        aged(node_("b", "auto-g6-az1", cpu="4", memory="16Gi", gpu=1), 5 * HOUR),
        pod_b,
    ]
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


@pytest.fixture
def objects(tmp_path: Path) -> Path:
    protected = ready(pod("train-0", node="b"))
    protected["metadata"]["annotations"] = {"karpenter.sh/do-not-disrupt": "true"}
    return two_gpu_nodes(tmp_path, "0s", protected)


def test_json_contract(objects: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "disruption",
            "--cluster",
            str(ROOT / "examples" / "cluster.json"),
            "-f",
            str(objects),
            "-o",
            "json",
            "--now",
            str(NOW),
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"decisions", "kept", "allowedDisruptions", "eligible"}
    (d,) = out["decisions"]
    assert set(d) == {"reason", "nodePool", "nodes", "replacement", "savingsPerHour", "pods", "message"}
    assert (d["reason"], d["nodes"]) == ("Empty", ["a"])
    assert "do-not-disrupt" in out["kept"]["b"]


def test_text_explains_kept_nodes(objects: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["disruption", "--cluster", str(ROOT / "examples" / "cluster.json"), "-f", str(objects), "--now", str(NOW)]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert (
        text.startswith("Empty")
        and "kept:" in text
        and "pod default/train-0 is annotated karpenter.sh/do-not-disrupt" in text
    )


def test_bad_input_names_the_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: x}\nspec: {template: {spec: {}}}\n")
    assert main(["disruption", "--cluster", str(ROOT / "examples" / "cluster.json"), "-f", str(bad)]) == 2
    assert "NodePool x" in capsys.readouterr().err


def test_last_pod_change_comes_from_the_pods(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Node b is five hours old, but its pod was scheduled a minute ago: consolidateAfter (10m) counts from that, as the
    # deployed function counts from its activity records.
    fresh = ready(pod("web-0", node="b"))
    fresh["status"]["conditions"].append(
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": iso(NOW - 60)}
    )
    path = two_gpu_nodes(tmp_path, "10m", fresh)
    cluster = str(ROOT / "examples" / "cluster.json")
    assert main(["disruption", "--cluster", cluster, "-f", str(path), "-o", "json", "--now", str(NOW)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [d["nodes"] for d in out["decisions"]] == [["a"]]
    assert "consolidateAfter 10m: pods changed 60s ago" in out["kept"]["b"]
