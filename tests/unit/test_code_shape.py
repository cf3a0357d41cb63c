"""No function or method in ``layers/`` is longer than 100 lines, counted from its ``def`` line to the last line of its
body: a longer one does several jobs, and each job wants its own name (as Karpenter's controllers have one method a step).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ROOT / "layers"
MAX_LINES = 100


def long_functions(source: str, path: str, limit: int = MAX_LINES) -> list[str]:
    """``path:line name (N lines)`` for every function, method or nested function in ``source`` longer than ``limit``."""
    found = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            end = node.end_lineno if node.end_lineno is not None else node.lineno
            lines = end - node.lineno + 1
            if lines > limit:
                found.append(f"{path}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_the_count_runs_from_the_def_line_to_the_last_line_of_the_body() -> None:
    body = "".join(f"    x = {i}\n" for i in range(99))
    exactly = f"@decorator\ndef f():\n{body}"  # the def line and 99 body lines: 100
    assert long_functions(exactly, "a.py") == []
    one_more = f"class C:\n    def g(self):\n    {body.replace(chr(10), chr(10) + '    ')}    y = 1\n"
    assert long_functions(one_more, "b.py") == ["b.py:2 g (101 lines)"]


def test_no_function_in_layers_is_longer_than_100_lines() -> None:
    found = []
    for path in sorted(LAYERS.rglob("*.py")):
        found += long_functions(path.read_text(), str(path.relative_to(ROOT)))
    assert found == [], "split these into named steps:\n" + "\n".join(found)
