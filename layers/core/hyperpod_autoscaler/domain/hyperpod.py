"""The instance-group view of a HyperPod DescribeCluster response (as boto3 returns it).

HyperPod facts that shape the autoscaler: one instance type and one zone per instance group; amd64 only; nodes are named
``hyperpod-<InstanceId>``; in continuous provisioning mode groups scale incrementally (BatchAddClusterNodes), otherwise through
UpdateCluster with an absolute InstanceCount.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from .base import NULL_AS_EMPTY_OBJECT, WireModel

CONTINUOUS = "Continuous"
AUTOSCALING_ENABLED = "Enable"


class VpcConfig(WireModel):
    security_group_ids: list[str] = Field(default_factory=list, alias="SecurityGroupIds")
    subnets: list[str] = Field(default_factory=list, alias="Subnets")


class InstanceGroup(WireModel):
    """One instance group: ``zones`` are filled from the subnets (ec2:DescribeSubnets) or the HyperpodNodeClass status."""

    name: str = Field(alias="InstanceGroupName")
    instance_type: str = Field(alias="InstanceType")
    current_count: int = Field(default=0, alias="CurrentCount")
    target_count: int = Field(default=0, alias="TargetCount")
    min_count: int = Field(default=0, alias="MinCount")
    status: str = Field(default="InService", alias="Status")
    execution_role: str | None = Field(default=None, alias="ExecutionRole")
    threads_per_core: int | None = Field(default=None, alias="ThreadsPerCore")
    override_vpc_config: VpcConfig | None = Field(default=None, alias="OverrideVpcConfig")
    active_operations: Annotated[dict[str, int], NULL_AS_EMPTY_OBJECT] = Field(
        default_factory=dict, alias="ActiveOperations"
    )
    zones: list[str] = Field(default_factory=list, alias="Zones")
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True)

    @property
    def subnets(self) -> list[str]:
        return self.override_vpc_config.subnets if self.override_vpc_config else []

    @property
    def zone(self) -> str | None:
        """HyperPod requires a group's subnets to be in one zone."""
        return self.zones[0] if self.zones else None

    @property
    def is_scaling(self) -> bool:
        return bool(self.active_operations.get("Scaling")) or self.status in ("Updating", "Creating", "SystemUpdating")


class ClusterView(WireModel):
    name: str = Field(alias="ClusterName")
    arn: str = Field(default="", alias="ClusterArn")
    status: str = Field(default="InService", alias="ClusterStatus")
    node_provisioning_mode: str | None = Field(default=None, alias="NodeProvisioningMode")
    eks_cluster_arn: str | None = None
    auto_scaling_mode: str | None = None
    """DescribeCluster's ``AutoScaling.Mode`` (Enable|Disable): HyperPod's own managed autoscaler."""
    instance_groups: list[InstanceGroup] = Field(default_factory=list, alias="InstanceGroups")

    @classmethod
    def from_describe_cluster(cls, response: dict[str, Any], subnet_zones: dict[str, str] | None = None) -> ClusterView:
        """Build from a DescribeCluster answer. ``subnet_zones`` maps subnet id -> zone (from ec2:DescribeSubnets)."""
        groups = []
        for raw in response.get("InstanceGroups") or []:
            group = InstanceGroup.model_validate(raw)
            group.raw = dict(raw)
            if subnet_zones and not group.zones:
                group.zones = sorted({subnet_zones[s] for s in group.subnets if s in subnet_zones})
            groups.append(group)
        orchestrator = response.get("Orchestrator") or {}
        return cls.model_validate(
            {
                "ClusterName": response.get("ClusterName", ""),
                "ClusterArn": response.get("ClusterArn", ""),
                "ClusterStatus": response.get("ClusterStatus", "InService"),
                "NodeProvisioningMode": response.get("NodeProvisioningMode"),
                "eks_cluster_arn": (orchestrator.get("Eks") or {}).get("ClusterArn"),
                "auto_scaling_mode": (response.get("AutoScaling") or {}).get("Mode"),
                "InstanceGroups": groups,
            }
        )

    @property
    def continuous(self) -> bool:
        return self.node_provisioning_mode == CONTINUOUS

    @property
    def conflicting_autoscaler(self) -> str | None:
        """Why this autoscaler must leave the cluster alone (None when it may act): HyperPod's own autoscaler is enabled,
        and two autoscalers writing one cluster's instance groups fight over the counts."""
        if self.auto_scaling_mode == AUTOSCALING_ENABLED:
            return (
                f"HyperPod's own autoscaling is enabled on cluster {self.name} (AutoScaling.Mode: Enable): this autoscaler "
                "changes nothing in the cluster until it is disabled"
            )
        return None

    def group(self, name: str) -> InstanceGroup | None:
        for g in self.instance_groups:
            if g.name == name:
                return g
        return None
