"""A short fault soak (the full one is ``make bench``): whatever the injected faults, nothing is over-provisioned, stuck,
evicted against a PDB, lost with its node or left cordoned."""

from __future__ import annotations

from hpa_testkit.soak import soak


def test_a_short_fault_soak_keeps_every_invariant() -> None:
    report = soak(runs=16, seed=7)
    assert report.runs == 16 and report.provision_runs and report.deprovision_runs
    assert sum(report.faults.values()) > 0, "faults were injected"
    assert report.over_provisioned_nodes == 0, report.failures
    assert report.stuck_executions == 0, report.failures
    assert report.pdb_violating_evictions == 0, report.failures
    assert report.lost_pods == 0 and report.stranded_nodes == 0, report.failures
    assert report.failures == []
