"""ProvisioningRequests and PodTemplates read from a live cluster (the Kubernetes API emulator) by ``plan --kubeconfig``:
Kueue's example Job applied verbatim (``tests/unit/kueue_examples/sample-job.yaml``), with the request and PodTemplate
Kueue's provisioning admission check creates for it (``tests.unit.test_gangs_kueue.kueue_request``), plans as the same
objects given as files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hpa_testkit.kube import KubeEmulator
from hyperpod_autoscaler.cli import main

from tests.unit.test_gangs_kueue import CLUSTER, EXAMPLES, SEED, kueue_request

ATOMIC = "best-effort-atomic-scale-up.autoscaling.x-k8s.io"


def test_plan_reads_requests_and_pod_templates_from_the_cluster(
    kube: KubeEmulator, kubeconfig: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = kueue_request(ATOMIC)
    files = tmp_path / "created.yaml"
    files.write_text(yaml.safe_dump_all(created))
    args = ["plan", "--cluster", CLUSTER, "--time-budget", "0.2"]
    assert main([*args, *[x for f in [*EXAMPLES, *SEED, str(files)] for x in ("-f", f)]]) == 0
    from_files = json.loads(capsys.readouterr().out)
    (job,) = [d for d in yaml.safe_load_all(Path(EXAMPLES[1]).read_text()) if d]
    for obj in [job, *created, *(yaml.safe_load(Path(f).read_text()) for f in SEED)]:
        kube.apply(obj)
    assert main([*args, "--kubeconfig", kubeconfig]) == 0
    from_api = json.loads(capsys.readouterr().out)
    assert from_api == from_files
    assert [(r["name"], r["decision"], len(r["pods"])) for r in from_api["provisioningRequests"]] == [
        (created[1]["metadata"]["name"], "provision", 3)
    ]


def test_the_snapshot_reads_requests_and_status_goes_through_the_status_subresource(
    kube: KubeEmulator, kubeconfig: str
) -> None:
    from hyperpod_autoscaler.adapters.kube import KubeCluster

    from tests.unit.test_gangs import request, template

    kube.apply(template("worker"))
    kube.apply(request("train", count=2))
    cluster = KubeCluster.from_kubeconfig(kubeconfig)
    snapshot = cluster.snapshot()
    assert [r.key for r in snapshot.provisioning_requests] == ["default/train"]
    assert [t.key for t in snapshot.pod_templates] == ["default/worker"]

    def written() -> dict[str, dict[str, str]]:
        stored = kube.get("autoscaling.x-k8s.io/v1", "ProvisioningRequest", "train", "default") or {}
        return {c["type"]: c for c in (stored.get("status") or {}).get("conditions", [])}

    provisioning = {"type": "Provisioned", "status": "False", "reason": "Provisioning", "message": "booting"}
    cluster.set_provisioning_request_status("default", "train", [provisioning])
    first = written()["Provisioned"]
    assert (first["status"], first["reason"]) == ("False", "Provisioning") and first["lastTransitionTime"]
    accepted = {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "ok"}
    cluster.set_provisioning_request_status("default", "train", [accepted, {**provisioning, "message": "1 of 2"}])
    after = written()
    assert set(after) == {"Accepted", "Provisioned"}, "conditions are merged by type"
    assert after["Provisioned"]["lastTransitionTime"] == first["lastTransitionTime"], "same status: same transition"
    stored = kube.get("autoscaling.x-k8s.io/v1", "ProvisioningRequest", "train", "default") or {}
    assert stored["spec"]["podSets"][0]["count"] == 2, "the spec is untouched"
