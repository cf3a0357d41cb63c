"""The metrics the services record, as they see them (``adapters.metrics`` publishes them as CloudWatch metrics).

The names are Karpenter's where Karpenter has the metric, so that users find the charts they already know; they are part
of the contract (the dashboard and the alarms in template.yaml chart and watch them by name), which is why they live
with the port and not with the adapter that happens to publish them.
"""

from __future__ import annotations

from typing import Protocol

# Karpenter's metric -> ours. Gauges are sampled at the end of a decision; counters are per decision.
PENDING_PODS = "PendingPods"  # karpenter_pods_state{phase=Pending}; high resolution (an alarm may watch it every 10 s)
UNSCHEDULABLE_PODS = "UnschedulablePods"  # karpenter_scheduler_unschedulable_pods_count
NODECLAIMS_CREATED = "NodeClaimsCreated"  # karpenter_nodeclaims_created_total
NODECLAIMS_TERMINATED = "NodeClaimsTerminated"  # karpenter_nodeclaims_terminated_total
NODECLAIMS_DISRUPTED = "NodeClaimsDisrupted"  # karpenter_nodeclaims_disrupted_total
SCHEDULING_DURATION = "SchedulingDuration"  # karpenter_scheduler_scheduling_duration_seconds
CLOUDPROVIDER_ERRORS = "CloudProviderErrors"  # karpenter_cloudprovider_errors_total
NODEPOOL_USAGE = "NodePoolUsage"  # karpenter_nodepools_usage
NODEPOOL_LIMIT = "NodePoolLimit"  # karpenter_nodepools_limit
NODEPOOL_ALLOWED_DISRUPTIONS = "NodePoolAllowedDisruptions"  # karpenter_nodepools_allowed_disruptions
DISRUPTION_DECISIONS = "VoluntaryDisruptionDecisions"  # karpenter_voluntary_disruption_decisions_total
DISRUPTION_ELIGIBLE_NODES = "DisruptionEligibleNodes"  # karpenter_voluntary_disruption_eligible_nodes
NODES_TOTAL = "Nodes"  # karpenter_nodes_total (HyperPod nodes in managed instance groups)
POD_STARTUP_DURATION = "PodsProvisioningStartupDuration"  # karpenter_pods_provisioning_startup_duration_seconds
# The project's own.
INFLIGHT_NODECLAIMS = "InflightNodeClaims"  # nodes asked for and not yet Ready
DECISION_CAP_HIT = "DecisionCapHit"  # a global cap (per decision or in total) cut a plan: drives the cap alarm
RECONCILE_PASSES = "ReconcilePasses"
LEASE_CONTENDED = "LeaseContended"  # an invocation found the lease held and left a pass request
PROVISION_EXECUTIONS_STARTED = "ProvisionExecutionsStarted"
PROVISION_STEPS = "ProvisionSteps"  # one per step of a provision execution (Step=Scale|Check)
NODECLAIMS_READY = "NodeClaimsReady"  # new nodes Running in HyperPod and Ready in Kubernetes
DEPROVISION_STEPS = "DeprovisionSteps"  # one per step of a deprovision execution (Step=Cordon|Drain|Delete|...)
EVICTIONS = "Evictions"  # by Result=evicted|blocked|gone|waiting-do-not-disrupt|deleted-after-grace
POD_SCALER_DESIRED = "ScaledObjectDesiredReplicas"  # keda_scaler_metrics_value's consequence: the replicas decided
POD_SCALER_CHANGES = "ScaledObjectScaleChanges"  # scale subresource writes, by Direction=up|down
INVALID_OBJECTS = "InvalidObjects"  # objects skipped as malformed in the last snapshot, in total and by Kind
AUTOSCALER_CONFLICT = "AutoscalerConflict"  # 1 while HyperPod's own autoscaler is enabled (this one changes nothing)
POD_SCALER_ERRORS = "ScaledObjectErrors"  # keda_scaled_object_errors_total: bad objects and failed metric reads


class MetricsPort(Protocol):
    """Datapoints recorded during an invocation, with per-datapoint dimensions (a NodePool, an instance group, a reason).
    Implementations must be thread-safe: the reconcile loop records from a small thread pool."""

    def count(self, name: str, value: float = 1, **dimensions: str) -> None: ...

    def gauge(self, name: str, value: float, **dimensions: str) -> None: ...

    def gauge_high_resolution(self, name: str, value: float, **dimensions: str) -> None:
        """A 1-second-resolution gauge (an alarm may evaluate it every 10 s)."""
        ...

    def seconds(self, name: str, value: float, **dimensions: str) -> None: ...

    def flush(self) -> object:
        """Publish what was recorded and clear it (once per invocation: the handler's ``@metrics.log_metrics``)."""
        ...
