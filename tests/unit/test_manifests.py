"""The manifests users apply: the RBAC grants exactly what the adapter calls, the CRDs match the kinds the core reads."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hyperpod_autoscaler.domain import gangs

ROOT = Path(__file__).resolve().parents[2]


def test_rbac_binds_the_template_group_and_grants_no_wildcards() -> None:
    docs = list(yaml.safe_load_all((ROOT / "manifests" / "rbac.yaml").read_text()))
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
    template = (ROOT / "template.yaml").read_text()
    default_group = re.search(r"KubernetesGroup:\n(?:\s+.*\n)*?\s+Default: (\S+)", template)
    assert default_group is not None
    assert binding["subjects"][0]["name"] == default_group.group(1)
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
    granted = {
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    # what adapters/kube.py does
    for need in [
        ("", "nodes", "update"),
        ("", "pods/eviction", "create"),
        ("", "events", "create"),
        ("karpenter.sh", "nodepools/status", "patch"),
        ("karpenter.sagemaker.amazonaws.com", "hyperpodnodeclasses/status", "patch"),
        ("apps", "deployments/scale", "patch"),
        ("keda.sh", "scaledobjects", "list"),
        ("keda.sh", "scaledobjects", "get"),
        ("keda.sh", "scaledobjects/status", "patch"),
        ("autoscaling.x-k8s.io", "provisioningrequests", "list"),
        ("autoscaling.x-k8s.io", "provisioningrequests/status", "patch"),
        ("", "podtemplates", "list"),
    ]:
        assert need in granted, need
    assert ("", "nodes", "delete") not in granted, (
        "HyperPod deletes instances; the autoscaler never deletes Node objects"
    )


def test_crds_cover_the_kinds_the_core_reads() -> None:
    names = set()
    for path in (ROOT / "manifests" / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        spec = crd["spec"]
        names.add((spec["group"], spec["names"]["kind"]))
        assert crd["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}"
        assert all("status" in v["subresources"] for v in spec["versions"])
    assert names == {
        ("karpenter.sh", "NodePool"),
        ("karpenter.sagemaker.amazonaws.com", "HyperpodNodeClass"),
        ("keda.sh", "ScaledObject"),
        ("autoscaling.x-k8s.io", "ProvisioningRequest"),
    }


def test_request_checks_match_the_provisioning_request_crd() -> None:
    """The limits a bad request is blocked for are the CRD's (upstream's), not our own."""
    crd = yaml.safe_load((ROOT / "manifests" / "crds" / "provisioningrequests.autoscaling.x-k8s.io.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    pod_sets = spec["properties"]["podSets"]
    assert (pod_sets["minItems"], pod_sets["maxItems"]) == (1, gangs.MAX_POD_SETS)
    assert pod_sets["items"]["properties"]["count"]["minimum"] == 1
    assert spec["properties"]["parameters"]["additionalProperties"]["maxLength"] == gangs.MAX_PARAMETER_CHARS
    assert set(spec["required"]) == {"podSets", "provisioningClassName"}
