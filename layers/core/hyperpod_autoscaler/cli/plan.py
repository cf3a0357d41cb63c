"""``hyperpod-autoscaler plan``: the packing engine offline (``-f`` files) or on a live cluster (``--kubeconfig``).

    hyperpod-autoscaler plan --cluster CLUSTER.json -f OBJECTS.yaml [-f MORE.yaml ...] [--catalog CATALOG.yaml] --output json
    hyperpod-autoscaler plan --cluster CLUSTER.json --kubeconfig PATH [--context NAME] --output json

Exit codes: 0 every pending pod is placed; 3 a plan was made but some pods are unschedulable (printed, grouped by reason);
2 bad input (a message naming the object and field); 1 an unexpected error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from ..domain.catalog import Catalog
from ..domain.documents import MAX_INPUT_CHARS
from ..domain.errors import InvalidObject
from ..domain.gangs import POD_GROUP
from ..domain.hyperpod import ClusterView, InstanceGroup
from ..domain.objects import ClusterObjects, load_yaml_documents, parse_objects
from ..domain.plan import Plan, PlanInput, PlanOptions


def register(parser: argparse.ArgumentParser) -> None:
    add_snapshot_arguments(parser, output="json")
    parser.add_argument(
        "--time-budget", type=float, default=2.0, help="seconds the engine may spend improving the plan (default 2)"
    )


def add_snapshot_arguments(parser: argparse.ArgumentParser, output: str) -> None:
    """What a command reads a cluster from: a DescribeCluster response and the objects (files or a live cluster), the
    catalog, the output format (``output`` by default) and the input limit."""
    parser.add_argument("--cluster", required=True, metavar="CLUSTER.json", help="a DescribeCluster response (boto3)")
    parser.add_argument(
        "-f", "--filename", action="append", default=[], metavar="OBJECTS.yaml", help="objects (repeatable)"
    )
    parser.add_argument("--kubeconfig", help="read the objects from a live cluster instead of -f files")
    parser.add_argument("--context", help="kubeconfig context (with --kubeconfig)")
    parser.add_argument("--catalog", metavar="CATALOG.yaml", help="override or extend the built-in instance catalog")
    parser.add_argument("--output", "-o", choices=["json", "text"], default=output)
    add_input_limit(parser)


def add_input_limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-input-mb",
        type=float,
        default=MAX_INPUT_CHARS / 2**20,
        metavar="MB",
        help=f"refuse input files larger than this in total (default {MAX_INPUT_CHARS // 2**20})",
    )


def input_limit(args: argparse.Namespace) -> int:
    limit = float(getattr(args, "max_input_mb", MAX_INPUT_CHARS / 2**20))
    if not limit > 0:
        raise InvalidObject("arguments", "plan", "--max-input-mb", f"must be a positive number, got {limit:g}")
    return int(limit * 2**20)


def read_input(path: str | Path, max_chars: int = MAX_INPUT_CHARS, limit: int | None = None) -> str:
    """A file's text, refused before it is read whole when it is larger than ``max_chars`` (what is left of ``limit``,
    the limit on all the input files together, when it is given)."""
    why = f"is larger than the limit of {max_chars / 2**20:g} MiB"
    if limit is not None and limit != max_chars:
        why = f"makes the input files larger than the limit of {limit / 2**20:g} MiB together"
    too_large = InvalidObject("file", str(path), "", why)
    try:
        with open(path, encoding="utf-8") as handle:
            if os.fstat(handle.fileno()).st_size > max_chars:  # a regular file: refused without reading it
                raise too_large
            text = handle.read(max_chars + 1)
    except OSError as exc:
        raise InvalidObject("file", str(path), "", f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InvalidObject("file", str(path), "", f"is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if len(text) > max_chars:
        raise too_large
    return text


DESCRIBE_CLUSTER_REQUIRED = ("ClusterArn", "ClusterStatus", "InstanceGroups")
"""The members botocore's DescribeClusterResponse shape marks required: a file without them is not a DescribeCluster
response (a ListClusters answer, a Kubernetes object, a HyperpodNodeClass...)."""

DESCRIBE_CLUSTER_TYPES: dict[str, type] = {
    "ClusterName": str,
    "ClusterArn": str,
    "ClusterStatus": str,
    "NodeProvisioningMode": str,
    "AutoScaling": dict,
    "Orchestrator": dict,
    "InstanceGroups": list,
}
"""The type of each member the autoscaler reads (as boto3 returns them; a null member counts as absent)."""

GROUP_REQUIRED = ("InstanceGroupName", "InstanceType")

HOW_TO_GET_ONE = "aws sagemaker describe-cluster --cluster-name NAME > CLUSTER.json"

_JSON_TYPE = {str: "a string", dict: "an object", list: "a list", int: "a number", float: "a number", bool: "a boolean"}


def _json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPE.get(type(value), type(value).__name__)


def check_describe_cluster(response: Any, path: str) -> None:
    """Refuse, naming the file and the field, what is not a DescribeCluster response (the shape boto3 and
    ``aws sagemaker describe-cluster`` return) before any of it is used."""

    def refuse(field: str, why: str) -> InvalidObject:
        return InvalidObject("DescribeCluster", path, field, why)

    if not isinstance(response, dict):
        raise refuse("", f"is {_json_type(response)}, not a DescribeCluster response (a JSON object: {HOW_TO_GET_ONE})")
    for key in DESCRIBE_CLUSTER_REQUIRED:
        if key not in response:
            raise refuse(key, f"missing: this is not a DescribeCluster response ({HOW_TO_GET_ONE})")
    for key, kind in DESCRIBE_CLUSTER_TYPES.items():
        value = response.get(key)
        if value is not None and not isinstance(value, kind):
            raise refuse(key, f"must be {_JSON_TYPE[kind]}, not {_json_type(value)}")
    mode = (response.get("AutoScaling") or {}).get("Mode")
    if mode is not None and not isinstance(mode, str):
        raise refuse("AutoScaling.Mode", f"must be a string, not {_json_type(mode)}")
    eks = (response.get("Orchestrator") or {}).get("Eks")
    if eks is not None and not isinstance(eks, dict):
        raise refuse("Orchestrator.Eks", f"must be an object, not {_json_type(eks)}")
    for i, group in enumerate(response.get("InstanceGroups") or []):
        where = f"InstanceGroups[{i}]"
        if not isinstance(group, dict):
            raise refuse(where, f"must be an object, not {_json_type(group)}")
        for key in GROUP_REQUIRED:
            if key not in group:
                raise refuse(f"{where}.{key}", "missing")
        try:
            InstanceGroup.model_validate(group)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first.get("loc", ()))
            name = group.get("InstanceGroupName")
            raise refuse(f"{where}.{field}", f"{first.get('msg')} (instance group {name})") from None


def load_cluster(path: str, max_chars: int = MAX_INPUT_CHARS) -> ClusterView:
    """The DescribeCluster response in the file ``path``; InvalidObject (exit code 2) naming the file and the field when
    it is not one."""
    text = read_input(path, max_chars)
    try:
        response = json.loads(text)
    except RecursionError:
        raise InvalidObject("DescribeCluster", path, "", "not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise InvalidObject("DescribeCluster", path, "", f"not valid JSON: {exc}") from None
    check_describe_cluster(response, path)
    try:
        return ClusterView.from_describe_cluster(response)
    except ValidationError as exc:  # what check_describe_cluster does not look at
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidObject("DescribeCluster", path, field, str(first.get("msg"))) from None


def load_objects(paths: list[str], max_chars: int = MAX_INPUT_CHARS) -> ClusterObjects:
    """The objects of every file (YAML or JSON; a directory means its .yaml/.yml/.json files, as with ``kubectl apply
    -f DIR``). ``max_chars`` bounds all the files together, so that memory stays bounded however many are given."""
    docs: list[Any] = []
    files: list[Path] = []
    for path in paths:
        p = Path(path)
        files.extend(sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml", ".json")) if p.is_dir() else [p])
    texts: list[tuple[Path, str]] = []
    budget = max_chars
    for f in files:  # every file read (and the limit checked) before any is parsed
        texts.append((f, read_input(f, budget, max_chars)))
        budget -= len(texts[-1][1])
    for f, text in texts:
        docs.extend(load_yaml_documents(text, source=str(f), max_chars=max_chars))
    return parse_objects(docs, strict=True, ignore_unknown_kinds=True)


def make_plan(args: argparse.Namespace) -> Plan:
    cluster = load_cluster(args.cluster, input_limit(args))
    catalog = Catalog.load(args.catalog) if args.catalog else Catalog.builtin()
    if args.kubeconfig:
        if args.filename:
            raise InvalidObject("arguments", "plan", "--kubeconfig", "use either -f files or --kubeconfig, not both")
        from ..adapters.kube import read_cluster_objects

        objects = read_cluster_objects(args.kubeconfig, args.context)
    elif args.filename:
        objects = load_objects(args.filename, input_limit(args))
    else:
        raise InvalidObject("arguments", "plan", "-f", "give at least one -f OBJECTS.yaml, or --kubeconfig")
    from ..domain.scheduling import schedule

    return schedule(
        PlanInput.from_objects(objects, cluster, catalog), PlanOptions(time_budget_seconds=args.time_budget)
    )


def print_text(plan: Plan, out: TextIO) -> None:
    contract = plan.to_contract()
    claims = contract["nodeClaims"]
    out.write(f"New nodes: {len(claims)}   hourly cost of new nodes: ${contract['hourlyCost']:.3f}\n")
    if claims:
        out.write(f"\n{'NODEPOOL':<20} {'INSTANCE GROUP':<22} {'TYPE':<18} {'ZONE':<12} PODS\n")
        for c in claims:
            out.write(
                f"{c['nodePool']:<20} {c['instanceGroup']:<22} {c['instanceType']:<18} {c['zone']:<12} "
                f"{len(c['pods'])}: {', '.join(c['pods'])}\n"
            )
    print_gangs(plan, out)
    if contract["scaleUp"]:
        out.write("\nScale up: " + ", ".join(f"{g} +{n}" for g, n in contract["scaleUp"].items()) + "\n")
    if contract["existingNodes"]:
        out.write("\nOn existing or in-flight capacity:\n")
        for e in contract["existingNodes"]:
            out.write(f"  {e['node']}: {', '.join(e['pods'])}\n")
    if contract["unschedulable"]:
        out.write("\nUnschedulable (why):\n")
        for line in grouped_reasons(contract["unschedulable"]):
            out.write(f"  {line}\n")
    if plan.nodepool_errors:
        out.write("\nNodePools not used:\n")
        for name, reason in sorted(plan.nodepool_errors.items()):
            out.write(f"  {name}: {reason}\n")


def print_gangs(plan: Plan, out: TextIO) -> None:
    """One line per ProvisioningRequest and pod group: what was decided for all its pods, and why."""
    if not plan.gangs:
        return
    out.write("\nAll or nothing (ProvisioningRequests and pod groups):\n")
    for g in plan.gangs:
        what = f"{g.source} {g.namespace}/{g.name}"
        if g.provisioning_class and g.source != POD_GROUP:
            what += f" ({g.provisioning_class})"
        out.write(f"  {what}: {g.decision}, {len(g.pods)} pods: {g.reason}\n")


EXIT_UNSCHEDULABLE = 3


def _like(pods: list[str]) -> str:
    """``default/x-*`` for pods whose keys share ``default/x-``; the key itself for one pod."""
    if len(pods) == 1:
        return pods[0]
    first, last = min(pods), max(pods)  # the common prefix of all is that of the two extremes
    size = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), min(len(first), len(last)))
    prefix = first[:size]
    return f"{len(pods)} pods like {prefix}*"


def grouped_reasons(unschedulable: list[dict[str, str]]) -> list[str]:
    """One line per distinct reason, the pods that share it summarized ("12 pods like default/x-*: ..."), the most
    frequent reason first."""
    by_reason: dict[str, list[str]] = {}
    for u in unschedulable:
        by_reason.setdefault(u["reason"], []).append(u["pod"])
    ordered = sorted(by_reason.items(), key=lambda item: (-len(item[1]), item[0]))
    return [f"{_like(sorted(pods))}: {reason}" for reason, pods in ordered]


def run(args: argparse.Namespace) -> int:
    try:
        plan = make_plan(args)
    except InvalidObject as exc:
        print(f"plan: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        print(f"plan: {exc}", file=sys.stderr)
        return 2
    if args.output == "json":
        json.dump(plan.to_contract(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_text(plan, sys.stdout)
    return EXIT_UNSCHEDULABLE if plan.unschedulable else 0
