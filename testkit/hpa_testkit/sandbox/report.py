"""The sandbox's timeline and its report: matplotlib PNGs, an HTML page and a JSON summary."""

from __future__ import annotations

import html
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Sample:
    t: float
    pending_pods: int
    running_pods: int
    nodes: dict[str, int]
    hourly_cost: float
    replicas: dict[str, int] = field(default_factory=dict)


@dataclass
class TimelineEvent:
    t: float
    kind: str
    text: str


@dataclass
class Timeline:
    samples: list[Sample] = field(default_factory=list)
    events: list[TimelineEvent] = field(default_factory=list)

    def event(self, t: float, kind: str, text: str) -> None:
        self.events.append(TimelineEvent(t, kind, text))

    def node_hours(self) -> dict[str, float]:
        """Node-hours per instance group, integrating the sampled node counts (step function between samples)."""
        out: dict[str, float] = {}
        for a, b in zip(self.samples, self.samples[1:], strict=False):
            for group, count in a.nodes.items():
                out[group] = out.get(group, 0.0) + count * (b.t - a.t) / 3600
        return out

    def cost(self) -> float:
        return sum(a.hourly_cost * (b.t - a.t) / 3600 for a, b in zip(self.samples, self.samples[1:], strict=False))


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def write_report(directory: str | Path, title: str, timeline: Timeline, summary: dict[str, Any]) -> Path:
    """Write plots (PNG), index.html and summary.json into ``directory``; returns the HTML path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    t = [s.t / 60 for s in timeline.samples]
    plots: list[tuple[str, str]] = []

    def save(name: str, caption: str) -> None:
        plt.tight_layout()
        plt.savefig(out / name, dpi=90)
        plt.close()
        plots.append((name, caption))

    plt.figure(figsize=(9, 3.2))
    plt.plot(t, [s.pending_pods for s in timeline.samples], label="pending pods", color="tab:red")
    plt.plot(t, [s.running_pods for s in timeline.samples], label="running pods", color="tab:green")
    plt.xlabel("cluster time (min)")
    plt.ylabel("pods")
    plt.legend(loc="upper right")
    save("pods.png", "Pending and running pods")

    groups = sorted({g for s in timeline.samples for g in s.nodes})
    plt.figure(figsize=(9, 3.2))
    if groups:
        plt.stackplot(t, *[[s.nodes.get(g, 0) for s in timeline.samples] for g in groups], labels=groups, step="post")
        plt.legend(loc="upper right")
    plt.xlabel("cluster time (min)")
    plt.ylabel("nodes")
    save("nodes.png", "Nodes per instance group")

    plt.figure(figsize=(9, 3.2))
    plt.step(t, [s.hourly_cost for s in timeline.samples], where="post", color="tab:purple")
    plt.xlabel("cluster time (min)")
    plt.ylabel("USD / hour")
    save("cost.png", "Hourly cost of the nodes")

    kinds = sorted({e.kind for e in timeline.events})
    plt.figure(figsize=(9, 0.6 + 0.35 * max(1, len(kinds))))
    for row, kind in enumerate(kinds):
        xs = [e.t / 60 for e in timeline.events if e.kind == kind]
        plt.scatter(xs, [row] * len(xs), marker="|", s=200)
    plt.yticks(range(len(kinds)), kinds)
    plt.xlabel("cluster time (min)")
    if t:
        plt.xlim(0, max(t))
    save("events.png", "Events on a timeline")

    leading = {k: summary[k] for k in ("verdict",) if k in summary}
    ordered = {**leading, **dict(sorted((k, v) for k, v in summary.items() if k not in leading))}
    (out / "summary.json").write_text(json.dumps(ordered, indent=2, default=str) + "\n")  # the verdict first
    (out / "timeline.json").write_text(
        json.dumps({"samples": [asdict(s) for s in timeline.samples], "events": [asdict(e) for e in timeline.events]})
    )
    verdict = summary.get("verdict") or {}
    verdict_rows = "".join(
        f"<tr><th>{html.escape(VERDICT_LABELS.get(k, k))}</th><td>{html.escape(_shown(v))}</td></tr>"
        for k, v in verdict.items()
    )
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v, default=str))}</td></tr>"
        for k, v in sorted(summary.items())
        if k != "verdict"
    )
    images = "".join(
        f'<figure><img src="{name}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'
        for name, caption in plots
    )
    events = "".join(
        f"<tr><td>{e.t / 60:.1f}</td><td>{html.escape(e.kind)}</td><td>{html.escape(e.text)}</td></tr>"
        for e in timeline.events[-400:]
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left;font-size:13px}}img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1><h2>Verdict</h2><table class="verdict">{verdict_rows}</table>
<h2>Summary</h2><table>{rows}</table><h2>Timeline</h2>{images}
<h2>Events</h2><table><tr><th>min</th><th>kind</th><th>what</th></tr>{events}</table></body></html>
"""
    path = out / "index.html"
    path.write_text(page)
    return path


VERDICT_LABELS = {
    "cost": "Cost of the run ($)",
    "staticBaselineCost": "Smallest static cluster serving the peak, same duration ($)",
    "staticBaselineNodes": "Nodes of that static cluster",
    "karpenterStyleCost": "Karpenter-style packing of the same demand, minute by minute ($)",
    "pendingPodMinutes": "Pending pod-minutes",
    "timeToCapacityBeyondBootSeconds": "Time to capacity beyond the boot delay (s)",
    "nodesCreatedByReason": "Nodes created, by reason",
    "nodesRemovedByReason": "Nodes removed, by reason",
    "drills": "Drills",
    "violations": "Violations",
    "unservedPods": "Pods never served, with plan's reason",
    "gangJobs": "Training jobs (gangs): time to start (s), GPU-node-hours and $ billed while they could not start",
}


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_shown(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return "; ".join(_shown(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:.2f}"
    return "n/a" if value is None else str(value)


def summarize_times(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "max": max(values) if values else None,
        "mean": statistics.fmean(values) if values else None,
    }
