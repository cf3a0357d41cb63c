"""Two autoscalers never fight: the cluster view reads DescribeCluster's AutoScaling.Mode, and status says it first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hyperpod_autoscaler.cli.status import print_text
from hyperpod_autoscaler.domain.hyperpod import ClusterView

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("autoscaling", "conflict"),
    [(None, False), ({"Mode": "Disable"}, False), ({"Mode": "Enable", "AutoScalerType": "Karpenter"}, True)],
)
def test_autoscaling_mode_enable_is_a_conflict(autoscaling: dict[str, str] | None, conflict: bool) -> None:
    response = json.loads((ROOT / "examples" / "cluster.json").read_text())
    response.pop("AutoScaling", None)
    if autoscaling is not None:
        response["AutoScaling"] = autoscaling
    view = ClusterView.from_describe_cluster(response)
    assert (view.conflicting_autoscaler is not None) is conflict
    if conflict:
        assert "AutoScaling.Mode: Enable" in str(view.conflicting_autoscaler)


def test_status_leads_with_the_conflict(capsys: pytest.CaptureFixture[str]) -> None:
    why = "HyperPod's own autoscaling is enabled on cluster c (AutoScaling.Mode: Enable)"
    empty = {"pending": 3, "unschedulable": 0, "inflightNodes": 0, "claims": [], "conflict": why}
    print_text(
        {
            "pending": empty,
            "inflight": {},
            "backoffs": {},
            "disruption": {"decisions": [], "kept": {}, "conflict": why},
        }
    )
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"NOT ACTING: {why}"
