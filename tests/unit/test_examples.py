"""The examples say what is so: the seed workload fits the seed NodePool's nodes, the example cluster is one the README
allows, and the files the template points at exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from hyperpod_autoscaler.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def seed_deployment_pods(tmp_path: Path) -> Path:
    """The seed Deployment's pod, pending, as the plan command reads it."""
    docs = [d for d in yaml.safe_load_all((EXAMPLES / "seed" / "scaledobject.yaml").read_text()) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    template = deployment["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{deployment['metadata']['name']}-0", "namespace": "default", **template["metadata"]},
        "spec": template["spec"],
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]},
    }
    path = tmp_path / "deployment-pod.yaml"
    path.write_text(yaml.safe_dump(pod))
    return path


def test_the_seed_deployment_fits_a_node_of_its_nodepool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = EXAMPLES / "seed"
    args = ["plan", "--cluster", str(EXAMPLES / "cluster.json"), "-o", "json"]
    for f in (seed / "nodeclass.yaml", seed / "nodepool.yaml", seed_deployment_pods(tmp_path)):
        args += ["-f", str(f)]
    assert main(args) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["unschedulable"] == [], plan["unschedulable"]
    assert sum(plan["scaleUp"].values()) == 1


def test_the_example_cluster_is_one_the_readme_allows() -> None:
    """Continuous provisioning, and HyperPod's own autoscaler off: two autoscalers on one cluster fight."""
    cluster = json.loads((EXAMPLES / "cluster.json").read_text())
    assert cluster["NodeProvisioningMode"] == "Continuous"
    assert (cluster.get("AutoScaling") or {}).get("Mode") != "Enable"


def test_files_the_template_points_at_exist() -> None:
    text = (ROOT / "template.yaml").read_text()
    named = set(re.findall(r"\b((?:docs|manifests|examples)/[\w./-]+\.\w+|README\.md)\b", text))
    assert named, "the template names no document"
    assert [n for n in sorted(named) if not (ROOT / n).exists()] == []
