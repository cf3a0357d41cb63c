"""Host ports: two pods asking the same host port (port, protocol, host IP) never share a node.

As the kube-scheduler's NodePorts filter and Karpenter's host port usage: a host IP of ``0.0.0.0`` (or none) takes the
port on every address, so it conflicts with any host IP; two distinct addresses do not conflict. The rule is expressed in
what the engine already places by: each such pod gets one internal label per port (its host IP as the value) and a
required anti-affinity on the hostname against the pods whose label conflicts, in every namespace."""

from __future__ import annotations

from typing import Any

from ..k8s import HOSTNAME_LABEL, Pod

PREFIX = "hostport.hyperpod-autoscaler.internal"
ANY_ADDRESS = "any"
WILDCARDS = ("", "0.0.0.0", "::")


def host_ports(pod: Pod) -> list[tuple[int, str, str]]:
    """(port, protocol, host IP) of every host port the pod's containers ask for (as the NodePorts filter, not init
    containers)."""
    out = []
    for container in pod.spec.containers:
        for port in container.ports:
            if port.host_port:
                out.append((port.host_port, (port.protocol or "TCP").upper(), port.host_ip))
    return sorted(set(out))


HostPort = tuple[int, str, str]


def conflict(wanted: tuple[HostPort, ...], taken: tuple[HostPort, ...]) -> HostPort | None:
    """The first port of ``wanted`` that one of ``taken`` already holds (same port and protocol, and the same address or
    either on every address), or None."""
    for port, protocol, ip in wanted:
        for t_port, t_protocol, t_ip in taken:
            if port == t_port and protocol == t_protocol and (ip == t_ip or ip in WILDCARDS or t_ip in WILDCARDS):
                return port, protocol, ip
    return None


def _term(key: str, value: str) -> dict[str, Any]:
    expr: dict[str, Any] = (
        {"key": key, "operator": "Exists"}
        if value == ANY_ADDRESS
        else {"key": key, "operator": "In", "values": [value, ANY_ADDRESS]}
    )
    return {"topologyKey": HOSTNAME_LABEL, "labelSelector": {"matchExpressions": [expr]}, "namespaceSelector": {}}


def with_host_port_rules(pod: Pod) -> Pod:
    """``pod`` itself when it asks no host port, else a copy carrying the labels and anti-affinity terms above."""
    ports = host_ports(pod)
    if not ports:
        return pod
    wire = pod.to_wire()
    labels = wire.setdefault("metadata", {}).setdefault("labels", {})
    terms = []
    for port, protocol, ip in ports:
        key = f"{PREFIX}/{port}-{protocol.lower()}"
        value = ANY_ADDRESS if ip in WILDCARDS else ip.replace(":", "_")
        labels[key] = value
        terms.append(_term(key, value))
    anti = wire["spec"].setdefault("affinity", {}).setdefault("podAntiAffinity", {})
    anti.setdefault("requiredDuringSchedulingIgnoredDuringExecution", []).extend(terms)
    return Pod.model_validate(wire)
