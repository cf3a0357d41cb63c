"""The UpdateCluster item built from a DescribeCluster group: botocore's own parameter validation is the oracle."""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.validate import ParamValidator
from hyperpod_autoscaler.adapters.hyperpod import update_group_item


def sagemaker() -> Any:
    session = botocore.session.get_session()
    return session.create_client("sagemaker", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="y")


DESCRIBED = {
    "InstanceGroupName": "auto-g6-az1",
    "InstanceType": "ml.g6.xlarge",
    "CurrentCount": 1,
    "TargetCount": 2,
    "MinCount": 1,
    "Status": "InService",
    "ActiveOperations": {"Scaling": 1},
    "ExecutionRole": "arn:aws:iam::123456789012:role/HyperPodExecutionRole",
    "LifeCycleConfig": {"SourceS3Uri": "s3://b/scripts/", "OnCreate": "on_create.sh"},
    "ThreadsPerCore": 1,
    "InstanceStorageConfigs": [{"EbsVolumeConfig": {"VolumeSizeInGB": 500}}],
    "CurrentImageId": "ami-0old",
    "DesiredImageId": "ami-0new",
    "KubernetesConfig": {
        "CurrentLabels": {"team": "a"},
        "DesiredLabels": {"team": "b"},
        "CurrentTaints": [],
        "DesiredTaints": [{"Key": "gpu", "Value": "true", "Effect": "NoSchedule"}],
    },
    "OverrideVpcConfig": {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0a1b2c3d4e5f60001"]},
}


def test_the_item_passes_botocore_validation_and_keeps_the_declared_state() -> None:
    client = sagemaker()
    item = update_group_item(client, DESCRIBED, 3)
    shape = client.meta.service_model.operation_model("UpdateCluster").input_shape
    report = ParamValidator().validate({"ClusterName": "c", "InstanceGroups": [item]}, shape)
    assert not report.has_errors(), report.generate_report()
    assert item["InstanceCount"] == 3 and item["MinInstanceCount"] == 1
    assert item["ImageId"] == "ami-0new", "the desired image, so the echo changes nothing"
    assert item["KubernetesConfig"] == {
        "Labels": {"team": "b"},
        "Taints": [{"Key": "gpu", "Value": "true", "Effect": "NoSchedule"}],
    }
    assert item["InstanceStorageConfigs"] == [{"EbsVolumeConfig": {"VolumeSizeInGB": 500}}]
    assert "CurrentCount" not in item and "CurrentImageId" not in item and "ActiveOperations" not in item
