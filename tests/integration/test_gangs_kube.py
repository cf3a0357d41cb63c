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
