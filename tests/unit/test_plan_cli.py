"""The ``plan`` command's contract: arguments, JSON output exactly as issue 2 specifies, text output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hyperpod_autoscaler.cli import main

ROOT = Path(__file__).resolve().parents[2]
SEED = [str(ROOT / "examples" / "seed" / n) for n in ("nodeclass.yaml", "nodepool.yaml", "pods.yaml")]
CLUSTER = str(ROOT / "examples" / "cluster.json")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--cluster", CLUSTER]
    for f in SEED:
        args += ["-f", f]
    code, out, _ = run(capsys, *args, "--output", "json")
    assert code == 0
    doc = json.loads(out)
    assert list(doc) == [
        "nodeClaims",
        "existingNodes",
        "unschedulable",
        "scaleUp",
        "hourlyCost",
        "provisioningRequests",
        "podGroups",
    ]
    assert doc["provisioningRequests"] == [] and doc["podGroups"] == []
    assert set(doc["nodeClaims"][0]) == {"nodePool", "instanceGroup", "instanceType", "zone", "pods"}
    assert doc["scaleUp"] == {"auto-g6-az1": 2}
    assert isinstance(doc["hourlyCost"], float) and doc["hourlyCost"] > 0


def test_text_output_names_every_unschedulable_pod(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge = tmp_path / "huge.yaml"
    huge.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: huge, namespace: ml}\n"
        "spec:\n  containers:\n  - name: c\n    resources: {requests: {cpu: '500', memory: 1Gi}}\n"
    )
    code, out, _ = run(capsys, "--cluster", CLUSTER, "-f", SEED[0], "-f", SEED[1], "-f", str(huge), "-o", "text")
    assert code == 3, "unschedulable pods exit 3 (README: exit codes)"
    assert "Unschedulable" in out and "ml/huge" in out


def test_catalog_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "instanceTypes:\n  - name: ml.g6.xlarge\n    vcpu: 8\n    memoryGiB: 32\n    pricePerHour: 1.0\n"
    )
    args = ["--cluster", CLUSTER, "--catalog", str(catalog)]
    for f in SEED:
        args += ["-f", f]
    code, out, _ = run(capsys, *args)
    assert code == 0
    doc = json.loads(out)
    assert doc["scaleUp"] == {"auto-g6-az1": 1}, "eight vCPUs take all six 1-CPU pods"
    assert doc["hourlyCost"] == 1.0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: bad, namespace: default}\nspec:\n  containers:\n"
            "  - name: c\n    resources: {requests: {cpu: abc}}\n",
            "Pod default/bad: field spec.containers[0].resources.requests",
        ),
        (
            "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: np}\nspec:\n  template:\n    spec:\n"
            "      nodeClassRef: {group: karpenter.sagemaker.amazonaws.com, kind: HyperpodNodeClass, name: x}\n"
            "      requirements:\n      - {key: a, operator: Between, values: ['1']}\n",
            "NodePool np: field spec.template.spec.requirements[0]",
        ),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_input_names_object_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    code, _, err = run(capsys, "--cluster", CLUSTER, "-f", str(bad))
    assert code == 2
    assert expected in err


def test_bad_cluster_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "cluster.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "--cluster", str(bad), "-f", SEED[2])
    assert code == 2 and "DescribeCluster" in err


GOOD = {"ClusterArn": "arn:aws:sagemaker:us-west-2:123456789012:cluster/x", "ClusterStatus": "InService"}
NOT_ONE = "missing: this is not a DescribeCluster response"
GROUP = {"InstanceGroupName": "g", "InstanceType": "ml.g6.xlarge"}


@pytest.mark.parametrize("command", ["plan", "disruption"])
@pytest.mark.parametrize(
    ("response", "field", "why"),
    [
        ({}, "ClusterArn", NOT_ONE),
        ({"ClusterSummaries": []}, "ClusterArn", NOT_ONE),  # a ListClusters answer
        ({"kind": "Pod", "metadata": {"name": "x"}}, "ClusterArn", NOT_ONE),
        ({**GOOD}, "InstanceGroups", "missing"),
        ({**GOOD, "InstanceGroups": "g"}, "InstanceGroups", "must be a list, not a string"),
        ({**GOOD, "InstanceGroups": [5]}, "InstanceGroups[0]", "must be an object, not a number"),
        ({**GOOD, "InstanceGroups": [GROUP, {"InstanceGroupName": "h"}]}, "InstanceGroups[1].InstanceType", "missing"),
        (
            {**GOOD, "InstanceGroups": [{**GROUP, "CurrentCount": "many"}]},
            "InstanceGroups[0].CurrentCount",
            "Input should be a valid integer",
        ),
        ({**GOOD, "ClusterName": 5, "InstanceGroups": []}, "ClusterName", "must be a string, not a number"),
        ({**GOOD, "AutoScaling": "Enable", "InstanceGroups": []}, "AutoScaling", "must be an object, not a string"),
        ({**GOOD, "AutoScaling": {"Mode": True}, "InstanceGroups": []}, "AutoScaling.Mode", "must be a string"),
        ({**GOOD, "Orchestrator": {"Eks": "c"}, "InstanceGroups": []}, "Orchestrator.Eks", "must be an object"),
        ([GROUP], "", "is a list, not a DescribeCluster response"),
    ],
)
def test_cluster_must_be_a_describe_cluster_response(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, response: object, field: str, why: str
) -> None:
    """``--cluster`` names the file and the missing or wrong field, exits 2 (bad input), and prints no traceback."""
    path = tmp_path / "not-a-cluster.json"
    path.write_text(json.dumps(response))
    code = main([command, "--cluster", str(path), "-f", SEED[0], "-f", SEED[1], "-f", SEED[2]])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"DescribeCluster {path}" in err
    assert (f"field {field}: {why}" if field else why) in err, err
    assert "Traceback" not in err and "unexpected error" not in err, err


def test_identical_reasons_are_grouped_and_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Twelve pods too big for any type share one reason: one line "12 pods like ml/x-*: ...", the odd one on its own."""
    pods = tmp_path / "pods.yaml"
    docs = [
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: x-{i}, namespace: ml}}\n"
        "spec:\n  containers:\n  - name: c\n    resources: {requests: {cpu: '500', memory: 1Gi}}\n"
        for i in range(12)
    ]
    docs.append(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: odd, namespace: ml}\n"
        "spec:\n  nodeSelector: {team: nobody}\n  containers:\n  - name: c\n    resources: {requests: {cpu: '1'}}\n"
    )
    pods.write_text("---\n".join(docs))
    for output in ("text", "json"):
        code, out, _ = run(capsys, "--cluster", CLUSTER, "-f", SEED[0], "-f", SEED[1], "-f", str(pods), "-o", output)
        assert code == 3, (output, out)
    _, out, _ = run(capsys, "--cluster", CLUSTER, "-f", SEED[0], "-f", SEED[1], "-f", str(pods), "-o", "text")
    lines = out.split("Unschedulable (why):\n")[1].split("\n\n")[0].rstrip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("  12 pods like ml/x-*: "), lines
    assert lines[1].startswith("  ml/odd: "), lines
    assert "x-3" not in out.split("Unschedulable (why):")[1]


def test_all_placed_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--cluster", CLUSTER]
    for f in SEED:
        args += ["-f", f]
    assert run(capsys, *args, "-o", "text")[0] == 0


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"hyperpod-autoscaler {version('hyperpod-autoscaler')}"
