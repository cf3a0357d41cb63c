"""The cycle collector paused around loads and scheduling runs (``domain/collector.py``), and always given back."""

from __future__ import annotations

import gc

import pytest
from hyperpod_autoscaler.domain.collector import cycle_collector_paused
from hyperpod_autoscaler.domain.plan import PlanOptions
from hyperpod_autoscaler.domain.scheduling import schedule
from hyperpod_autoscaler.domain.scheduling.packer import Packer

from .engine_fixtures import nodeclass, nodepool, plan_input, pod


def test_the_collector_is_off_in_the_block_and_back_after_it_even_after_an_error() -> None:
    assert gc.isenabled()
    with cycle_collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cycle_collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_the_caller_paused_stays_paused() -> None:
    gc.disable()
    try:
        with cycle_collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_scheduling_run_pauses_the_collector_and_gives_it_back(monkeypatch: pytest.MonkeyPatch) -> None:
    during: list[bool] = []
    run = Packer.run

    def observed(self: Packer) -> None:
        during.append(gc.isenabled())
        run(self)

    monkeypatch.setattr(Packer, "run", observed)
    inp = plan_input([nodeclass(), nodepool(), *(pod(f"p{i}", cpu="1", memory="1Gi") for i in range(5))])
    plan = schedule(inp, PlanOptions(time_budget_seconds=0.05))
    assert sum(len(c.pods) for c in plan.node_claims) == 5
    assert during == [False], "the collector is paused while the engine runs"
    assert gc.isenabled()


def test_parsing_objects_pauses_the_collector_and_gives_it_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from hyperpod_autoscaler.domain import objects

    during: list[bool] = []
    parse = objects.parse_object

    def observed(doc: object) -> object:
        during.append(gc.isenabled())
        return parse(doc)

    monkeypatch.setattr(objects, "parse_object", observed)
    parsed = objects.parse_objects([nodeclass(), nodepool(), pod("p0")])
    assert len(parsed.pods) == 1
    assert during == [False, False, False]
    assert gc.isenabled()
