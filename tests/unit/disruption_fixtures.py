"""Builders for the disruption tests: a cluster of dicts -> DisruptionInput."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from hyperpod_autoscaler.domain.catalog import Catalog
from hyperpod_autoscaler.domain.disruption import DisruptionInput, DisruptionPlan, DisruptionSettings, plan_disruptions
from hyperpod_autoscaler.domain.hyperpod import ClusterView
from hyperpod_autoscaler.domain.objects import parse_objects

from .engine_fixtures import GROUPS

NOW = 1_800_000_000.0
HOUR = 3600.0


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def aged(obj: dict[str, Any], seconds: float) -> dict[str, Any]:
    obj["metadata"]["creationTimestamp"] = iso(NOW - seconds)
    return obj


def ready(pod: dict[str, Any]) -> dict[str, Any]:
    pod["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    return pod


def view(counts: dict[str, int] | None = None, min_counts: dict[str, int] | None = None) -> ClusterView:
    counts = counts or {}
    min_counts = min_counts or {}
    return ClusterView.from_describe_cluster(
        {
            "ClusterName": "c",
            "ClusterStatus": "InService",
            "InstanceGroups": [
                {
                    "InstanceGroupName": g,
                    "InstanceType": t,
                    "CurrentCount": counts.get(g, 0),
                    "TargetCount": counts.get(g, 0),
                    "MinCount": min_counts.get(g, 0),
                    "Status": "InService",
                    "OverrideVpcConfig": {"Subnets": [f"subnet-{g}"]},
                }
                for g, (t, _z) in GROUPS.items()
            ],
        }
    )


def disrupt(
    objects: list[dict[str, Any]],
    *,
    now: float = NOW,
    last_change: dict[str, float] | None = None,
    busy: set[str] | None = None,
    min_counts: dict[str, int] | None = None,
    settings: DisruptionSettings | None = None,
    unavailable: dict[str, str] | None = None,
) -> DisruptionPlan:
    parsed = parse_objects(copy.deepcopy(objects))
    counts: dict[str, int] = {}
    for n in parsed.nodes:
        if n.instance_group:
            counts[n.instance_group] = counts.get(n.instance_group, 0) + 1
    return plan_disruptions(
        DisruptionInput(
            objects=parsed,
            cluster=view(counts, min_counts),
            catalog=Catalog.builtin(),
            now=now,
            last_pod_change={k: v for k, v in (last_change or {}).items()},
            busy=busy or set(),
            unavailable_groups=unavailable or {},
        ),
        settings or DisruptionSettings(simulation_budget_seconds=0.05),
    )
