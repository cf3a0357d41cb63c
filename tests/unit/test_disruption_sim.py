"""The trace simulation of benchmarks/disruption_sim.py on a small slice: the real packing engine and disruption decisions
give consolidation <= WhenEmpty <= static in cost, serve every pod (all three runs, the static cluster being sized to
serve the peak), and never undo a disruption (no flapping)."""

from __future__ import annotations

import pytest

from benchmarks.disruption_sim import DEFAULT_TRACE, SimConfig, compare, load_window

pytestmark = pytest.mark.skipif(not DEFAULT_TRACE.exists(), reason="the Alibaba trace is not in ../shared/data")


def test_consolidation_beats_when_empty_beats_static_on_a_trace_slice() -> None:
    window = load_window(DEFAULT_TRACE, kind="busiest", seconds=2 * 3600, fraction=0.5)
    assert len(window.pods) >= 40
    cmp = compare(window, SimConfig(policy="WhenEmptyOrUnderutilized", plan_budget_seconds=0.02))
    cons, empty, static = cmp.consolidation, cmp.when_empty, cmp.static
    assert cons.cost <= empty.cost <= static.cost
    assert cons.node_hours <= static.node_hours
    for run in (cons, empty, static):
        assert run.pods_never_served == 0 and run.pods_pending_at_end == 0, run.policy
        assert run.flaps == 0, run.policy
    # the static cluster is sized to serve the peak (the runs' per-group peaks, a plan of the busiest step, grown until
    # every pod is served): it holds at least each group's peak of the autoscaled runs
    held = dict(cmp.static_groups)
    for run in (cons, empty):
        assert all(held.get(g, 0) >= n for g, n in run.peak_by_group.items()), run.policy
    assert empty.pod_evictions == 0 and empty.node_removals.keys() <= {"Empty"}
    assert cons.node_removals.get("Underutilized", 0) > 0, "consolidation acted"
    assert static.removals == 0 and static.nodes_created == 0
    assert sum(n for _, n in cmp.static_groups) == static.peak_nodes
