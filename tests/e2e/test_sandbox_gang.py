"""Issue 17's measurement on the whole product: a 4-node x 8-GPU training job (a Kueue pod group) meets partial
capacity (only 3 of its 4 instances can launch) in the sandbox, with atomicity on (the default) and off
(``AtomicPodGroups=false``: its pods planned one by one, as Karpenter does).

The scenario is ``gang-scarce`` shortened: the fault lasts 15 minutes instead of 40. What must hold follows from the
setup, not from a run: with atomicity on, no node of the job is ever Running before all four can launch (a part of a
gang is given back while it still boots, and EC2 bills from running), so 0 GPU-node-hours bill while it cannot start;
with it off, the three nodes that can launch come up and bill until the fourth does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hpa_testkit.sandbox.runner import Sandbox, SandboxOptions
from hpa_testkit.sandbox.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "testkit" / "hpa_testkit" / "scenarios" / "gang-scarce.yaml"
FAULT_SECONDS = 900.0


def run(atomic: bool) -> dict[str, Any]:
    scenario = load_scenario(SCENARIO)
    fault = scenario.faults[0].model_copy(update={"duration": FAULT_SECONDS})
    scenario = scenario.model_copy(
        update={"duration": 2700.0, "faults": [fault], "provisioning_delay": {"default": 150, "train-p4d-az1": 300}}
    )
    overrides = {} if atomic else {"AtomicPodGroups": "false"}
    with Sandbox(scenario, SandboxOptions(speed=100_000, live=False, parameter_overrides=overrides)) as sandbox:
        return sandbox.run()


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "incremental"])
def test_an_unstartable_gang_bills_no_gpu_node_with_atomicity_on(atomic: bool) -> None:
    summary = run(atomic)
    (job,) = summary["gangJobs"]
    assert summary["verdict"]["gangJobs"] == [job], "a training scenario's verdict says what its jobs waited and paid"
    assert job["startedAt"] is not None and job["startedAt"] > FAULT_SECONDS, job
    if atomic:
        assert job["gpuNodeHoursWhileWaiting"] == 0.0, job
    else:
        # three 8-GPU nodes from when they come up (about 300 s after submission) until the fourth can launch
        assert job["gpuNodeHoursWhileWaiting"] > 3 * (FAULT_SECONDS - 60 - 300) / 3600, job
    assert summary["pdbViolations"] == 0 and summary["doNotDisruptViolations"] == 0
    assert summary["invocationErrors"] == []
