"""Which AWS API operations a Lambda function's code can call, read from the source (no AWS, no import of the product).

``operations(app_py)`` starts at ``handler`` in ``functions/<name>/app.py`` and follows what it names through the
``hyperpod_autoscaler`` package: module functions, module-level tables (the task functions' action maps), classes it
constructs and the methods called on them (``deps.hyperpod.delete_nodes(...)`` reaches ``delete_nodes`` of every adapter
class the function builds). In the adapter modules it reached, every attribute that is an operation of a boto3 client
the function creates (``client("dynamodb")``, ``session.client("eks", ...)``, ``_client_for("sqs", ...)``) is an
operation the function calls, named as IAM names it (``sagemaker:BatchDeleteClusterNodes``). Operation names come from
botocore's service models, so a renamed call or a new client cannot slip past.

The analysis over-approximates within what a function builds (a method name called anywhere on its path counts for
every class it constructs) and never crosses into code the function does not reach: the pod scaler builds no HyperPod
adapter, so no SageMaker operation is reachable from it.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

PACKAGE = "hyperpod_autoscaler"
CLIENT_FACTORIES = frozenset({"client", "regional_client", "_client_for", "_cached_client"})
IAM_PREFIX = {"stepfunctions": "states"}
# A receiver named like this is that service's client (``self.sm`` is SageMaker's, where ``describe_cluster`` is also
# an EKS operation).
RECEIVERS = {"sm": "sagemaker"}
# Library classes that call AWS on the function's behalf: (module, service of their client).
LIBRARY_CLIENTS = {
    "DynamoDBPersistenceLayer": ("aws_lambda_powertools.utilities.idempotency.persistence.dynamodb", "dynamodb"),
}

Target = tuple[str, ...]  # ("def", module, name) or ("method", module, class, method)


@dataclass
class Module:
    name: str
    defs: dict[str, ast.AST] = field(default_factory=dict)
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)


def _module(path: Path, name: str) -> Module:
    tree = ast.parse(path.read_text(), str(path))
    mod = Module(name)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            mod.defs[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    mod.defs[target.id] = node
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                mod.imports[alias.asname or alias.name] = (base, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                mod.imports[alias.asname or alias.name] = (alias.name, None)
    return mod


@cache
def _package() -> dict[str, Module]:
    root = Path(importlib.import_module(PACKAGE).__file__ or "").parent
    out: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = _module(path, ".".join(parts))
    return out


@cache
def service_operations(service: str) -> dict[str, str]:
    """boto3 method name -> API operation name, from botocore's model of ``service``."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


def _factory_service(node: ast.AST) -> str | None:
    """``client("eks")``, ``session.client("eks", ...)``, ``_client_for("sqs", ...)``: the service it makes a client of."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
        return None
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    value = node.args[0].value
    return value if name in CLIENT_FACTORIES and isinstance(value, str) else None


class _Reach:
    def __init__(self, modules: dict[str, Module]) -> None:
        self.modules = modules
        self.seen: set[Target] = set()
        self.work: list[tuple[Module, ast.AST, str | None]] = []
        self.bodies: list[tuple[Module, ast.AST]] = []
        self.classes: set[tuple[str, str]] = set()
        self.called: set[str] = {"__init__"}
        self.services: set[str] = set()
        self.libraries: set[str] = set()

    def resolve(self, mod: Module, node: ast.AST) -> Target | None:
        if isinstance(node, ast.Name):
            if node.id in mod.defs:
                return ("def", mod.name, node.id)
            base, name = mod.imports.get(node.id, ("", None))
            full = f"{base}.{name}" if name else base
            if full in self.modules:
                return ("module", full)
            if name and base in self.modules and name in self.modules[base].defs:
                return ("def", base, name)
            return ("library", name) if name in LIBRARY_CLIENTS else None
        if isinstance(node, ast.Attribute):
            owner = self.resolve(mod, node.value)
            if owner and owner[0] == "module":
                if node.attr in self.modules[owner[1]].defs:
                    return ("def", owner[1], node.attr)
                if f"{owner[1]}.{node.attr}" in self.modules:
                    return ("module", f"{owner[1]}.{node.attr}")
            if owner and owner[0] == "def" and isinstance(self.modules[owner[1]].defs[owner[2]], ast.ClassDef):
                return ("method", owner[1], owner[2], node.attr)
        return None

    def add(self, target: Target) -> None:
        if target in self.seen:
            return
        self.seen.add(target)
        mod = self.modules[target[1]]
        node = mod.defs[target[2]]
        if target[0] == "method":
            assert isinstance(node, ast.ClassDef)
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == target[3]:
                    self.work.append((mod, item, target[2]))
        elif isinstance(node, ast.ClassDef):
            self.classes.add((target[1], target[2]))
        else:
            self.work.append((mod, node, None))

    def visit(self, mod: Module, body: ast.AST, cls: str | None) -> None:
        self.bodies.append((mod, body))
        for node in ast.walk(body):
            if isinstance(node, ast.Name | ast.Attribute):
                target = self.resolve(mod, node)
                if target and target[0] in ("def", "method"):
                    self.add(target)
                elif target and target[0] == "library":
                    self.libraries.add(target[1])
            if not isinstance(node, ast.Call):
                continue
            service = _factory_service(node)
            if service:
                self.services.add(service)
            if isinstance(node.func, ast.Attribute):
                receiver = node.func.value
                if isinstance(receiver, ast.Name) and receiver.id == "self" and cls:
                    self.add(("method", mod.name, cls, node.func.attr))
                elif self.resolve(mod, node.func) is None and _factory_service(receiver) is None:
                    self.called.add(node.func.attr)

    def run(self, mod: Module, root: ast.AST) -> None:
        self.work.append((mod, root, None))
        while self.work:
            while self.work:
                self.visit(*self.work.pop())
            for modname, cls in sorted(self.classes):
                node = self.modules[modname].defs[cls]
                assert isinstance(node, ast.ClassDef)
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name in self.called:
                        self.add(("method", modname, cls, item.name))

    def service_of(self, node: ast.Attribute) -> str | None:
        direct = _factory_service(node.value)
        if direct:
            return direct
        candidates = [s for s in sorted(self.services) if node.attr in service_operations(s)]
        receiver = node.value
        hint = RECEIVERS.get(receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", ""))
        if len(candidates) > 1 and hint in candidates:
            return hint
        if len(candidates) > 1:
            raise AssertionError(f"{node.attr} is an operation of {candidates}: name the receiver in RECEIVERS")
        return candidates[0] if candidates else None

    def operations(self) -> set[str]:
        out: set[str] = set()
        for library in self.libraries:
            modname, service = LIBRARY_CLIENTS[library]
            tree = ast.parse(Path(importlib.import_module(modname).__file__ or "").read_text())
            ops = service_operations(service)
            out |= {
                f"{service}:{ops[n.attr]}" for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in ops
            }
        for mod, body in self.bodies:
            if not mod.name.startswith(f"{PACKAGE}.adapters."):
                continue  # services call ports, not clients
            for node in ast.walk(body):
                service = self.service_of(node) if isinstance(node, ast.Attribute) else None
                if service:
                    out.add(f"{IAM_PREFIX.get(service, service)}:{service_operations(service)[node.attr]}")
        return out


def operations(app: Path) -> set[str]:
    """The IAM actions (``service:Operation``) that ``handler`` in ``app`` can reach."""
    modules = dict(_package())
    mod = _module(app, "app")
    modules["app"] = mod
    reach = _Reach(modules)
    reach.run(mod, mod.defs["handler"])
    return reach.operations()
