"""The packing engine: which instance groups need how many new nodes, and which pods go where.

``schedule(inp, opts)`` is the one question scale-up, consolidation and ``hyperpod-autoscaler plan`` ask. It is pure (no
I/O) and deterministic for the same input. See ``docs/engine.md`` for the decisions it makes.
"""

from __future__ import annotations

from ..collector import cycle_collector_paused
from ..plan import Plan, PlanInput, PlanOptions
from .fit import pod_fits_node
from .packer import Packer


def schedule(inp: PlanInput, opts: PlanOptions | None = None) -> Plan:
    """Place ``inp.pods`` on existing nodes, in-flight capacity and new node claims, Karpenter's semantics, GPU-first and
    cost-aware; then improve the new claims within ``opts.time_budget_seconds``. ``inp.gangs`` are planned first, each
    all or nothing (``gangs.py``), after the capacity booked requests hold (``inp.reservations``)."""
    opts = opts or PlanOptions()
    with cycle_collector_paused():  # the engine allocates hundreds of thousands of small objects and keeps them
        if inp.gangs or inp.consumed or inp.reservations:
            from .gangs import schedule_gangs

            return schedule_gangs(inp, opts, _schedule_pods)
        return _schedule_pods(inp, opts)


def _schedule_pods(inp: PlanInput, opts: PlanOptions) -> Plan:
    packer = Packer(inp, opts)
    packer.run()
    if opts.improve and packer.claims:
        from .improve import improve

        improve(packer, opts.time_budget_seconds)
    return packer.plan()


__all__ = ["pod_fits_node", "schedule"]
