"""Kueue's own ProvisioningRequest example (``kueue_examples/``, verbatim from kubernetes-sigs/kueue
``site/static/examples/provisioning/``, the example of ``site/content/en/docs/admission-check-controllers/provisioning.md``)
planned through the ``plan`` command.

Kueue does not ship the ProvisioningRequest itself: its provisioning admission check creates it once the Job's workload
holds quota. ``kueue_request`` builds it as kubernetes-sigs/kueue ``pkg/controller/admissionchecks/provisioning/
controller.go`` does: request ``<workload>-<check>-<attempt>`` labelled ``kueue.x-k8s.io/managed``, the class and
parameters of the ProvisioningRequestConfig the AdmissionCheck names, plus the Job's ``provreq.kueue.x-k8s.io/``
annotations as parameters; one pod set per workload pod set, its PodTemplate ``ppt-<request>-<pod set>`` holding the
Job's pod template (the example's flavor adds no node labels or tolerations) and its count the Job's parallelism.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hyperpod_autoscaler.cli import main

from .engine_fixtures import node

HERE = Path(__file__).resolve().parent / "kueue_examples"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [str(HERE / "provisioning-setup.yaml"), str(HERE / "sample-job.yaml")]
SEED = [str(ROOT / "examples" / "seed" / n) for n in ("nodeclass.yaml", "nodepool.yaml")]
CLUSTER = str(ROOT / "examples" / "cluster.json")
PARAM_PREFIX = "provreq.kueue.x-k8s.io/"
WORKLOAD = "job-sample-job-7xk2p-3c5d1"
"""The workload Kueue names after the Job (whose name the API server generates from ``sample-job-``)."""


def _docs(path: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def kueue_request(provisioning_class: str | None = None) -> list[dict[str, Any]]:
    """The ProvisioningRequest and PodTemplate Kueue creates for the example Job (attempt 1 of check ``sample-prov``);
    ``provisioning_class`` replaces the config's class."""
    setup = _docs(EXAMPLES[0])
    (job,) = _docs(EXAMPLES[1])
    (check,) = [d for d in setup if d["kind"] == "AdmissionCheck"]
    (config,) = [d for d in setup if d["kind"] == "ProvisioningRequestConfig"]
    assert check["spec"]["parameters"]["name"] == config["metadata"]["name"]
    name = f"{WORKLOAD}-{check['metadata']['name']}-1"
    parameters = dict(config["spec"].get("parameters") or {})
    parameters.update(
        {
            k.removeprefix(PARAM_PREFIX): v
            for k, v in job["metadata"]["annotations"].items()
            if k.startswith(PARAM_PREFIX)
        }
    )
    namespace = job["metadata"]["namespace"]
    template_name = f"ppt-{name}-main"
    return [
        {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": template_name, "namespace": namespace},
            "template": copy.deepcopy(job["spec"]["template"]),
        },
        {
            "apiVersion": "autoscaling.x-k8s.io/v1",
            "kind": "ProvisioningRequest",
            "metadata": {"name": name, "namespace": namespace, "labels": {"kueue.x-k8s.io/managed": "true"}},
            "spec": {
                "provisioningClassName": provisioning_class or config["spec"]["provisioningClassName"],
                "parameters": parameters,
                "podSets": [{"podTemplateRef": {"name": template_name}, "count": job["spec"]["parallelism"]}],
            },
        },
    ]


def run_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str], objects: list[dict[str, Any]]) -> tuple[int, Any]:
    extra = tmp_path / "kueue-created.yaml"
    extra.write_text(yaml.safe_dump_all(objects))
    args = ["plan", "--cluster", CLUSTER, "--time-budget", "0.2"]
    for f in [*EXAMPLES, *SEED, str(extra)]:
        args += ["-f", f]
    code = main(args)
    return code, json.loads(capsys.readouterr().out)


NAME = f"{WORKLOAD}-sample-prov-1"
PODS = [f"default/{NAME}-0-{j}" for j in range(3)]


def test_the_example_request_is_read_as_kueue_creates_it() -> None:
    template, request = kueue_request()
    assert request["spec"]["parameters"] == {"maxRunDurationSeconds": "600"}
    assert request["spec"]["provisioningClassName"] == "check-capacity.autoscaling.x-k8s.io"
    assert template["template"]["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] == 1


def test_check_capacity_example_is_blocked_without_room(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_plan(tmp_path, capsys, kueue_request())
    assert code == 3
    assert doc["provisioningRequests"] == [
        {
            "namespace": "default",
            "name": NAME,
            "class": "check-capacity.autoscaling.x-k8s.io",
            "decision": "blocked",
            "pods": PODS,
            "reason": doc["provisioningRequests"][0]["reason"],
        }
    ]
    assert doc["nodeClaims"] == [] and sorted(u["pod"] for u in doc["unschedulable"]) == PODS


def test_check_capacity_example_fits_three_one_gpu_nodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Each ml.g6.xlarge node has one GPU: the 3 pods (100m CPU, 100Mi, 1 GPU) take one node each.
    nodes = [node(f"g6-{i}", group="auto-g6-az1", cpu="4", memory="16Gi", gpu=1) for i in range(3)]
    code, doc = run_plan(tmp_path, capsys, [*kueue_request(), *nodes])
    assert code == 0
    assert doc["provisioningRequests"][0]["decision"] == "fits"
    assert doc["nodeClaims"] == []
    assert sorted(k for e in doc["existingNodes"] for k in e["pods"]) == PODS
    assert all(len(e["pods"]) == 1 for e in doc["existingNodes"])


def test_atomic_class_example_provisions_one_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The seed NodePool allows only ml.g6.xlarge in us-west-2a (group auto-g6-az1): three nodes, one pod each.
    code, doc = run_plan(tmp_path, capsys, kueue_request("best-effort-atomic-scale-up.autoscaling.x-k8s.io"))
    assert code == 0
    assert doc["provisioningRequests"][0]["decision"] == "provision"
    assert doc["scaleUp"] == {"auto-g6-az1": 3}
    assert sorted(p for c in doc["nodeClaims"] for p in c["pods"]) == PODS


def test_text_output_says_what_each_request_gets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = tmp_path / "kueue-created.yaml"
    extra.write_text(yaml.safe_dump_all(kueue_request()))
    args = ["plan", "--cluster", CLUSTER, "-o", "text"]
    for f in [*EXAMPLES, *SEED, str(extra)]:
        args += ["-f", f]
    assert main(args) == 3
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith(f"  ProvisioningRequest default/{NAME}"))
    assert "(check-capacity.autoscaling.x-k8s.io): blocked, 3 pods: 3 of 3 pods cannot be placed" in line
    assert f"3 pods like default/{NAME}-0-*: ProvisioningRequest default/{NAME} is blocked" in out
