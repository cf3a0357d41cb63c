"""Dependencies point inward: domain <- ports <- adapters | services <- runtime <- entrypoints <- functions and cli.

Every import in the package counts, including the ones inside functions and under ``TYPE_CHECKING``: a lazy import is
still a dependency, it only moves the failure to run time. There is no list of exceptions; a module that needs something
from an outer layer needs a port instead."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from hpa_testkit.lint_asl import loops

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "hyperpod_autoscaler"
PACKAGE_DIR = ROOT / "layers" / "core" / PACKAGE
FUNCTIONS_DIR = ROOT / "functions"
TESTKIT = "hpa_testkit"

#: layer -> the layers of the package it may import (its own included). A module's layer is its first path part under
#: the package (``services/reconcile.py`` -> ``services``; ``runtime.py`` -> ``runtime``); the package's ``__init__`` is
#: ``root``, which every layer may import (it holds no code).
ALLOWED: dict[str, set[str]] = {
    "root": {"root"},
    "domain": {"root", "domain"},
    "ports": {"root", "domain", "ports"},
    "services": {"root", "domain", "ports", "services"},
    "adapters": {"root", "domain", "ports", "adapters"},
    "runtime": {"root", "domain", "ports", "services", "adapters", "runtime"},
    "entrypoints": {"root", "domain", "ports", "services", "adapters", "runtime", "entrypoints"},
    "cli": {"root", "domain", "ports", "services", "adapters", "runtime", "cli"},
    "functions": {"root", "entrypoints"},  # a handler is Powertools' decorators around one entry point
}


def layer_of_module(module: str) -> str:
    """The layer of a dotted module name inside the package (``hyperpod_autoscaler.adapters.kube`` -> ``adapters``)."""
    parts = module.split(".")
    assert parts[0] == PACKAGE, module
    return parts[1] if len(parts) > 1 else "root"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``tree``; relative imports are resolved against ``module``.
    ``from X import name`` yields ``X.name`` too, since ``name`` may be a sub-module (``from .. import runtime``)."""
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package_parts[: len(package_parts) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def violations(source: str, where: str, module: str, layer: str, is_package: bool) -> list[str]:
    found: dict[tuple[int, str], str] = {}  # one message per line and offence (``from X import a, b`` is one import)
    for line, imported in imported_modules(ast.parse(source), module, is_package):
        top = imported.split(".")[0]
        if top == TESTKIT:
            offence = "the test kit"
        elif top == PACKAGE and layer_of_module(imported) not in ALLOWED[layer]:
            offence = layer_of_module(imported)
        else:
            continue
        found.setdefault((line, offence), f"{where}:{line}: {layer} imports {offence} ({imported})")
    return list(found.values())


def package_modules() -> Iterator[tuple[Path, str, str, bool]]:
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        module = module_name(path)
        yield path, module, layer_of_module(module), path.name == "__init__.py"


def function_handlers() -> Iterator[tuple[Path, str, str, bool]]:
    for path in sorted(FUNCTIONS_DIR.glob("*/app.py")):
        yield path, "app", "functions", False


def all_violations() -> list[str]:
    return [
        v
        for path, module, layer, is_package in [*package_modules(), *function_handlers()]
        for v in violations(path.read_text(), str(path.relative_to(ROOT)), module, layer, is_package)
    ]


def test_every_module_has_a_known_layer() -> None:
    unknown = {layer for _, _, layer, _ in package_modules()} - ALLOWED.keys()
    assert not unknown, f"modules outside the known layers: {sorted(unknown)}; give them a layer in ALLOWED"


def test_dependencies_point_inward() -> None:
    found = all_violations()
    assert not found, "imports against the layering:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("layer", "source", "module", "expected"),
    [
        ("domain", "from ..adapters import metrics\n", "hyperpod_autoscaler.domain.x", ["domain imports adapters"]),
        ("services", "def f():\n    from . import drill\n", "hyperpod_autoscaler.services.x", []),
        (
            "services",
            "def f():\n    from .. import runtime\n",
            "hyperpod_autoscaler.services.x",
            ["services imports runtime"],
        ),
        ("adapters", "from ..services.triggers import X\n", "hyperpod_autoscaler.adapters.x", ["imports services"]),
        ("ports", "from ..domain.k8s import Node\n", "hyperpod_autoscaler.ports.x", []),
        ("cli", "import hpa_testkit.sandbox\n", "hyperpod_autoscaler.cli.x", ["imports the test kit"]),
        ("runtime", "from .cli import main\n", "hyperpod_autoscaler.runtime", ["runtime imports cli"]),
        ("entrypoints", "from . import runtime\n", "hyperpod_autoscaler.entrypoints", []),
        ("functions", "from hyperpod_autoscaler import runtime\n", "app", ["functions imports runtime"]),
    ],
)
def test_the_rule_catches_what_it_should(layer: str, source: str, module: str, expected: list[str]) -> None:
    found = violations(source, "probe.py", module, layer, is_package=False)
    assert len(found) == len(expected), found
    for message, wanted in zip(found, expected, strict=True):
        assert wanted in message, found


def dependencies(source: str, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The package's modules ``module`` imports: ``from X import name`` depends on ``X.name`` when that is a module, else
    on ``X`` (a package's ``__init__`` is a dependency only when something is taken from it)."""
    found = set()
    for _line, imported in imported_modules(ast.parse(source), module, is_package):
        if imported in modules:
            found.add(imported)
    # ``from X import name`` yields X and X.name: keep X only when no X.name it yielded is a module
    taken_from = {m.rpartition(".")[0] for m in found}
    return {m for m in found if m not in taken_from or m == module} - {module}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    return sorted(sorted(component) for component in loops(graph))


def test_no_module_depends_on_itself_through_others() -> None:
    """A cycle broken only by a lazy import is still a cycle: the two modules can be neither read nor changed apart."""
    found = list(package_modules())
    names = {module for _, module, _, _ in found}
    graph = {module: dependencies(path.read_text(), module, is_package, names) for path, module, _, is_package in found}
    assert not cycles(graph), f"import cycles: {cycles(graph)}"


def test_a_cycle_is_found_whatever_breaks_it() -> None:
    names = {"hyperpod_autoscaler.services.a", "hyperpod_autoscaler.services.b", "hyperpod_autoscaler.services"}
    graph = {
        "hyperpod_autoscaler.services.a": dependencies(
            "from .b import x\n", "hyperpod_autoscaler.services.a", False, names
        ),
        "hyperpod_autoscaler.services.b": dependencies(
            "def f():\n    from . import a\n", "hyperpod_autoscaler.services.b", False, names
        ),
    }
    assert cycles(graph) == [["hyperpod_autoscaler.services.a", "hyperpod_autoscaler.services.b"]]
    graph["hyperpod_autoscaler.services.b"] = set()
    assert cycles(graph) == []


def test_the_sandbox_command_is_a_plugin_of_the_test_kit(capsys: pytest.CaptureFixture[str]) -> None:
    """The product's CLI reaches the sandbox only through the entry point the test kit registers, and still offers it
    (``make demo`` runs ``hyperpod-autoscaler sandbox``)."""
    from hyperpod_autoscaler.cli import main, plugins

    assert plugins().get("sandbox") == "hpa_testkit.sandbox.command"
    assert main(["sandbox", "--scenario", "no-such-scenario"]) == 2
    assert "no bundled scenario of that name" in capsys.readouterr().err
