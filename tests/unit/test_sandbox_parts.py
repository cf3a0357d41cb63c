"""The sandbox's own machinery: template wiring, EventBridge matching, alarm evaluation, report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hpa_testkit.sandbox.alarms import Alarm, evaluate, evaluation_interval, evaluation_range, state_change_event
from hpa_testkit.sandbox.eventbus import matches, resolve
from hpa_testkit.sandbox.report import Sample, Timeline, percentile, write_report
from hpa_testkit.sandbox.template import read_wiring

ALARM_EVENT = {
    "source": "aws.cloudwatch",
    "detail-type": "CloudWatch Alarm State Change",
    "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:stack-pending-pods"],
    "detail": {"alarmName": "stack-pending-pods", "state": {"value": "ALARM"}, "count": 5},
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"source": ["aws.cloudwatch"]}, True),
        ({"source": ["aws.sagemaker"]}, False),
        ({"detail": {"alarmName": ["stack-pending-pods"], "state": {"value": ["ALARM"]}}}, True),
        ({"detail": {"state": {"value": ["OK"]}}}, False),
        ({"detail": {"alarmName": [{"prefix": "stack-"}]}}, True),
        ({"detail": {"alarmName": [{"suffix": "-pods"}]}}, True),
        ({"detail": {"alarmName": [{"anything-but": "stack-pending-pods"}]}}, False),
        ({"detail": {"alarmName": [{"anything-but": {"prefix": "other"}}]}}, True),
        ({"detail": {"missing": [{"exists": False}]}}, True),
        ({"detail": {"missing": [{"exists": True}]}}, False),
        ({"detail": {"count": [{"numeric": [">", 3, "<=", 5]}]}}, True),
        ({"detail": {"count": [{"numeric": [">", 5]}]}}, False),
        ({"resources": [{"wildcard": "*:alarm:stack-*"}]}, True),
        ({"detail-type": [{"equals-ignore-case": "cloudwatch alarm state change"}]}, True),
    ],
)
def test_event_patterns(pattern: dict, expected: bool) -> None:
    assert matches(pattern, ALARM_EVENT) is expected


def test_resolve_intrinsics() -> None:
    ctx = {"AWS::StackName": "stack", "ClusterName": "ml", "Fn.Arn": "arn:fn"}
    assert resolve({"Fn::Sub": "${AWS::StackName}-pending"}, ctx) == "stack-pending"
    assert resolve({"Ref": "ClusterName"}, ctx) == "ml"
    assert resolve({"Fn::GetAtt": ["Fn", "Arn"]}, ctx) == "arn:fn"
    assert resolve({"Fn::Sub": ["${X}-${ClusterName}", {"X": "a"}]}, ctx) == "a-ml"
    assert resolve({"Fn::Join": ["/", ["a", {"Ref": "ClusterName"}]]}, ctx) == "a/ml"


def _alarm(**kw: object) -> Alarm:
    props = {
        "AlarmName": "a",
        "Namespace": "N",
        "MetricName": "M",
        "Statistic": "Maximum",
        "Period": 10,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 0,
    }
    props.update(kw)
    return Alarm.from_properties(props, "us-east-1", "123456789012")


def test_alarm_m_of_n() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    alarm = _alarm()
    one = [(now - timedelta(seconds=5), 3.0)]
    two = [*one, (now - timedelta(seconds=25), 1.0)]
    assert evaluate(alarm, [], now) == "INSUFFICIENT_DATA"
    assert evaluate(alarm, one, now) == "OK"
    assert evaluate(alarm, two, now) == "ALARM"
    assert evaluate(_alarm(TreatMissingData="breaching"), one, now) == "ALARM"
    assert evaluate(_alarm(TreatMissingData="notBreaching"), [], now) == "OK"
    sums = [(now - timedelta(seconds=1), 1.0), (now - timedelta(seconds=2), 2.0)]
    assert (
        evaluate(_alarm(Statistic="Sum", Threshold=2.5, EvaluationPeriods=1, DatapointsToAlarm=1), sums, now) == "ALARM"
    )


def test_alarm_evaluation_interval_and_late_data() -> None:
    """AWS evaluates a 10 or 30 s period alarm every 10 s, any other every minute (AlarmThatSendsEmail.html). A data
    point that arrived late, in the period before the last, is still evaluated: CloudWatch looks over an evaluation
    range longer than EvaluationPeriods (alarms-and-missing-data.html); a point older than that range is not."""
    assert (evaluation_interval(10), evaluation_interval(30), evaluation_interval(60), evaluation_interval(300)) == (
        10,
        10,
        60,
        60,
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    alarm = _alarm(Period=60, EvaluationPeriods=1, DatapointsToAlarm=1, TreatMissingData="notBreaching")
    assert evaluation_range(alarm) > alarm.evaluation_periods
    late = [(now - timedelta(seconds=90), 3.0)]  # in [now-120, now-60): the last period [now-60, now) has nothing yet
    assert evaluate(alarm, late, now) == "OK"  # the last period alone: missing, not breaching
    assert evaluate(alarm, late, now, evaluation_range(alarm)) == "ALARM"
    newer_ok = [*late, (now - timedelta(seconds=30), 0.0)]  # the most recent real data point wins
    assert evaluate(alarm, newer_ok, now, evaluation_range(alarm)) == "OK"
    too_old = [(now - timedelta(seconds=60 * (evaluation_range(alarm) + 1)), 3.0)]
    assert evaluate(alarm, too_old, now, evaluation_range(alarm)) == "OK"


def test_alarm_event_shape() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    event = state_change_event(_alarm(), "OK", "ALARM", now, "us-east-1", "123456789012")
    assert event["source"] == "aws.cloudwatch"
    assert event["detail-type"] == "CloudWatch Alarm State Change"
    assert event["resources"] == ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:a"]
    assert event["detail"]["state"]["value"] == "ALARM"
    assert event["detail"]["previousState"]["value"] == "OK"
    json.loads(event["detail"]["state"]["reasonData"])


TEMPLATE = """
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  ClusterName: {Type: String, Default: ml}
Globals:
  Function:
    Environment: {Variables: {CLUSTER: !Ref ClusterName}}
Resources:
  Reconcile:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/reconcile
      Handler: app.handler
      Events:
        Tick: {Type: Schedule, Properties: {Schedule: rate(1 minute)}}
        Pending:
          Type: EventBridgeRule
          Properties:
            Pattern: {source: [aws.cloudwatch], detail: {alarmName: [!Sub '${AWS::StackName}-pending']}}
  Provision:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: statemachines/provision.asl.json
      DefinitionSubstitutions: {ScaleFunctionArn: !GetAtt Reconcile.Arn}
  Rule:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [aws.sagemaker]}
      Targets: [{Id: t, Arn: !GetAtt Reconcile.Arn}]
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties: {AlarmName: !Sub '${AWS::StackName}-pending', Namespace: N, MetricName: M, Threshold: 0,
                 ComparisonOperator: GreaterThanThreshold, EvaluationPeriods: 1}
"""


def test_read_wiring(tmp_path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    wiring = read_wiring(path)
    fn = wiring.functions["Reconcile"]
    assert str(fn.module_path) == "functions/reconcile/app.py" and fn.handler_name == "handler"
    assert fn.environment == {"CLUSTER": {"Ref": "ClusterName"}}
    assert wiring.state_machines["Provision"].substitutions == {
        "ScaleFunctionArn": {"Fn::GetAtt": ["Reconcile", "Arn"]}
    }
    rules = {r.logical_id: r for r in wiring.rules_for("Reconcile")}
    assert rules["Reconcile.Tick"].schedule == "rate(1 minute)"
    assert rules["Rule"].pattern == {"source": ["aws.sagemaker"]}
    pending = resolve(rules["Reconcile.Pending"].pattern, {"AWS::StackName": "s"})
    assert matches(pending, {"source": "aws.cloudwatch", "detail": {"alarmName": "s-pending"}})
    assert set(wiring.alarms) == {"Alarm"}


def test_report(tmp_path) -> None:
    timeline = Timeline()
    for i in range(5):
        timeline.samples.append(
            Sample(t=i * 60.0, pending_pods=5 - i, running_pods=i, nodes={"g": i}, hourly_cost=i * 1.0)
        )
    timeline.event(30, "scale-up", "g +1")
    assert timeline.node_hours() == {"g": pytest.approx((0 + 1 + 2 + 3) / 60)}
    assert timeline.cost() == pytest.approx((0 + 1 + 2 + 3) / 60)
    path = write_report(tmp_path, "t", timeline, {"cost": 1.0})
    assert path.exists() and (tmp_path / "pods.png").stat().st_size > 1000
    assert json.loads((tmp_path / "summary.json").read_text()) == {"cost": 1.0}
    assert percentile([1, 2, 3, 4], 0.5) == 2.5


def test_pod_tracker_time_to_capacity() -> None:
    from hpa_testkit.sandbox.tracking import PodTracker

    tracker = PodTracker()
    tracker.observe_node("old", 0)
    tracker.observe_pending("u1", "default/a", 10)
    tracker.observe_bound("u1", "default/a", "old", 12)  # room on an existing node
    tracker.observe_pending("u2", "default/b", 10)
    tracker.observe_node("new", 15)
    tracker.observe_bound("u2", "default/b", "new", 140)  # waited for a new node with a 120 s delay
    tracker.observe_pending("u3", "default/c", 20)
    tracker.forget("u3")  # deleted before it was served: not counted
    tracker.observe_pending("u4", "default/d", 30)
    assert sorted(tracker.times_to_capacity()) == [2, 130]
    assert sorted(tracker.beyond_provisioning({"new": 120.0})) == [2, 10]
    assert tracker.unserved() == ["default/d"]


def test_the_demo_trace_ships_with_the_project() -> None:
    """`make demo` replays the Azure LLM trace from the project itself (it needed ../shared/data beside the checkout)."""
    from hpa_testkit.sandbox import runner
    from hpa_testkit.sandbox.scenario import load_azure_arrivals

    path = runner._azure_trace_file()
    assert path.is_relative_to(runner.PROJECT) and path.stat().st_size < 200_000
    assert "CC BY 4.0" in (path.parent / "README.md").read_text()
    arrivals = load_azure_arrivals(path)
    assert len(arrivals) == 19_366 and arrivals == sorted(arrivals) and 3_400 < arrivals[-1] < 3_600


def test_the_trace_extract_matches_the_original() -> None:
    from hpa_testkit.sandbox import runner
    from hpa_testkit.sandbox.scenario import load_azure_arrivals

    original = runner.PROJECT.parent / "shared" / "data" / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"
    if not original.exists():
        pytest.skip("the original trace is not beside the checkout (../shared/data)")
    extract = load_azure_arrivals(runner._azure_trace_file())
    full = load_azure_arrivals(original)
    assert len(extract) == len(full) and max(abs(a - b) for a, b in zip(extract, full, strict=True)) <= 0.0005 + 1e-9


def test_a_bad_gap_in_the_trace_names_the_line(tmp_path: Path) -> None:
    from hpa_testkit.sandbox.scenario import load_azure_arrivals

    bad = tmp_path / "arrivals.csv"
    bad.write_text("gap_ms\n0\n12\nx\n")
    with pytest.raises(ValueError, match=r"arrivals.csv:4: field gap_ms is 'x'"):
        load_azure_arrivals(bad)


# --- the verdict (issue 15): each figure against a hand computation on a tiny case --------------------------------------

ROOT = Path(__file__).resolve().parents[2]
PRICE_XL = 0.8048 * 1.25  # ml.g6.xlarge: the CSV lists the EC2 price only; the catalog estimates SageMaker as x1.25


def _seed() -> tuple[object, object, object]:
    from hpa_testkit.sandbox.runner import load_yaml_objects
    from hyperpod_autoscaler.domain.catalog import Catalog
    from hyperpod_autoscaler.domain.hyperpod import ClusterView
    from hyperpod_autoscaler.domain.objects import parse_objects

    docs = [load_yaml_objects(ROOT / "examples" / "seed" / f) for f in ("nodepool.yaml", "nodeclass.yaml")]
    objects = parse_objects([d for ds in docs for d in ds], strict=False, ignore_unknown_kinds=True)
    view = ClusterView.from_describe_cluster(json.loads((ROOT / "examples" / "cluster.json").read_text()))
    view.group("auto-g6-az1").zones = ["us-west-2a"]  # type: ignore[union-attr]
    view.group("auto-g6-4xaz2").zones = ["us-west-2b"]  # type: ignore[union-attr]
    return objects, view, Catalog.builtin()


def _pods(n: int, cpu: str = "1", running_on: str | None = None) -> list[dict]:
    pods = []
    for i in range(n):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"p-{i}", "namespace": "default", "uid": f"u-{i}"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "256Mi"}}}]},
            "status": {"phase": "Running" if running_on else "Pending"},
        }
        if running_on:
            pod["spec"]["nodeName"] = running_on
        pods.append(pod)
    return pods


def test_pending_pod_minutes_and_pricing_over_time() -> None:
    from hpa_testkit.sandbox.verdict import pending_pod_minutes, priced_over_time

    samples = [Sample(0, 3, 0, {}, 0.0), Sample(30, 1, 2, {}, 0.0), Sample(90, 0, 3, {}, 0.0), Sample(120, 0, 3, {}, 0)]
    # 3 pods for half a minute, 1 for a minute, none after
    assert pending_pod_minutes(samples) == pytest.approx(3 * 0.5 + 1 * 1.0)
    # $1/h for half an hour, then $2/h for half an hour
    assert priced_over_time([(0.0, 1.0), (1800.0, 2.0)], 3600.0) == pytest.approx(0.5 + 1.0)


def test_karpenter_style_and_static_baseline_on_the_seed() -> None:
    """Six 1-CPU pods; the seed NodePool allows ml.g6.xlarge only (3.92 allocatable CPUs: three such pods per node), so
    both the Karpenter-style packing and the engine's static cluster are two ml.g6.xlarge; the 4xlarge group of the same
    class is excluded by the NodePool's requirement."""
    from hpa_testkit.sandbox.verdict import DemandTracker, managed_types, static_baseline_hourly

    objects, view, catalog = _seed()
    assert [t.name for t in managed_types(objects, view, catalog)] == ["ml.g6.xlarge"]  # type: ignore[arg-type]
    demand = DemandTracker()
    types = managed_types(objects, view, catalog)  # type: ignore[arg-type]
    demand.observe(0.0, _pods(2), types)
    demand.observe(60.0, _pods(6, running_on="n-1"), types)  # running pods are demand too
    demand.observe(120.0, _pods(3), types)
    assert [h for _, h in demand.points] == pytest.approx([PRICE_XL, 2 * PRICE_XL, PRICE_XL])
    assert demand.peak_t == 60.0 and len(demand.peak_pods) == 6
    hourly, nodes = static_baseline_hourly(demand.peak_pods, objects, view, catalog)  # type: ignore[arg-type]
    assert (hourly, nodes) == (pytest.approx(2 * PRICE_XL), 2)


def test_unserved_pods_carry_the_engines_reason() -> None:
    from hpa_testkit.sandbox.verdict import unserved_reasons
    from hyperpod_autoscaler.domain.objects import parse_objects

    objects, view, catalog = _seed()
    pods = parse_objects([*_pods(1), *_pods(1, cpu="64")[0:1]], strict=False).pods
    big = pods[1].model_copy(update={"metadata": pods[1].metadata.model_copy(update={"name": "huge"})})
    objects.pods = [pods[0], big]  # type: ignore[attr-defined]
    out = unserved_reasons(["default/p-0", "default/huge", "default/gone"], objects, view, catalog)  # type: ignore[arg-type]
    by_pod = {o["pod"]: o["reason"] for o in out}
    assert by_pod["default/p-0"].startswith("schedulable")
    assert "cpu" in by_pod["default/huge"].lower(), by_pod
    assert by_pod["default/gone"] == "gone before it was served"


def test_the_html_report_leads_with_the_verdict(tmp_path: Path) -> None:
    timeline = Timeline(samples=[Sample(0, 1, 0, {}, 0.0), Sample(60, 0, 1, {}, 1.0)])
    summary = {"aaa": 1, "verdict": {"cost": 1.5, "staticBaselineCost": 3.0, "karpenterStyleCost": 1.0}}
    write_report(tmp_path, "t", timeline, summary)
    page = (tmp_path / "index.html").read_text()
    assert page.index("Verdict") < page.index("Summary") < page.index("aaa")
    assert "Smallest static cluster serving the peak, same duration ($)</th><td>3.00" in page
    assert next(iter(json.loads((tmp_path / "summary.json").read_text()))) == "verdict", "summary.json leads with it"


def test_generated_names_uids_and_instance_ids_repeat_run_to_run() -> None:
    """Issue 15, a run is deterministic: generated pod names and uids (the engine orders pods by them) and HyperPod
    instance ids (node names; decisions order nodes by them) come from seeded generators, not uuid4/secrets."""
    from hpa_testkit.aws.hyperpod import HyperPodEmulator
    from hpa_testkit.kube.store import Store

    def names() -> list[tuple[str, str]]:
        store = Store()
        pod = store.type_for("v1", "Pod")
        body = {"metadata": {"generateName": "x-"}, "spec": {"containers": [{"name": "c"}]}}
        made = [store.create(pod, "default", body) for _ in range(3)]
        return [(m["metadata"]["name"], m["metadata"]["uid"]) for m in made]

    def instances() -> list[str]:
        emulator = HyperPodEmulator(now=lambda: 0.0)
        spec = json.loads((ROOT / "examples" / "cluster.json").read_text())
        emulator.create_cluster(spec)
        c = emulator.clusters[spec["ClusterName"]]
        group = next(iter(c.groups.values()))
        return [emulator._launch(c, group, 0.0).instance_id for _ in range(3)]

    first = names()
    assert first == names() and len({n for n, _ in first}) == 3
    assert instances() == instances()
