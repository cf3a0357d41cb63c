"""Reading YAML and JSON text that may be hostile (a file given to ``plan``, a manifest), fast and with bounded cost.

- JSON content (``kubectl get -o json``; the first character is ``{`` or ``[``) goes through the ``json`` module's C
  decoder, an order of magnitude faster than any YAML loader; YAML decides anything that is not valid JSON.
- YAML goes through libyaml's C parser when PyYAML has it (PyYAML's own parser otherwise), with PyYAML's safe
  constructor. Nodes are composed in Python rather than by libyaml's composer, which recurses in C and crashes the
  process (a segmentation fault) on a document nested about 100,000 levels deep; the Python composer costs the same.
- Limits, each rejected early with a message naming the input: at most ``MAX_INPUT_CHARS`` characters, at most
  ``MAX_DEPTH`` levels of nesting, and aliases may add at most ``MAX_ALIAS_EXPANSION`` nodes to a document (a "billion
  laughs" document holds a few dozen nodes that expand to 10^9: it would exhaust memory in whatever walks it next).
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.resolver import Resolver

from .collector import cycle_collector_paused
from .errors import InvalidObject

MAX_INPUT_CHARS = 32 * 2**20
"""32 MiB: about 8 times the largest Alibaba GPU trace written as pods (8,152 pods, 4 MB). ``plan --max-input-mb``."""
MAX_DEPTH = 100
"""Kubernetes objects nest about 15 levels (managedFields included); a CRD's schema a few dozen."""
MAX_ALIAS_EXPANSION = 1_000_000


class _LimitExceeded(yaml.YAMLError):
    """The document is well formed but exceeds a limit."""


class _BoundedComposer(Composer):
    """PyYAML's composer with a nesting limit, and the alias expansion of each document checked once it is composed."""

    _depth = 0
    _aliases = 0

    def compose_document(self) -> Node | None:  # type: ignore[override]
        self._depth = 0
        self._aliases = 0
        node: Node | None = super().compose_document()
        if node is not None and self._aliases:
            distinct, expanded = _tree_sizes(node)
            if expanded - distinct > MAX_ALIAS_EXPANSION:
                raise _LimitExceeded(
                    f"its aliases expand {distinct:,} nodes to {expanded:,} (more than {MAX_ALIAS_EXPANSION:,} added): "
                    "an alias bomb"
                )
        return node

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):  # type: ignore[attr-defined]  # the parser's, mixed in below
            self._aliases += 1
        self._depth += 1
        if self._depth > MAX_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[attr-defined]
            raise _LimitExceeded(f"nested more than {MAX_DEPTH} levels deep (line {mark.line + 1})")
        try:
            node: Node | None = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        return node


if getattr(yaml, "__with_libyaml__", False):
    from yaml._yaml import CParser

    class _Loader(_BoundedComposer, CParser, SafeConstructor, Resolver):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml

    class _Loader(_BoundedComposer, yaml.SafeLoader):  # type: ignore[no-redef]
        pass


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _tree_sizes(root: Node) -> tuple[int, int]:
    """(distinct nodes, nodes once every alias is expanded), without expanding: a post-order walk of the node graph that
    adds up integers. A node that contains itself (``&a [*a]``) is refused."""
    expanded: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            expanded[key] = 1 + sum(expanded[id(c)] for c in _children(node))
        elif key in on_path:
            raise _LimitExceeded("an alias refers to a node that contains it (a recursive structure)")
        elif key not in expanded:
            on_path.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node))
    return len(expanded), expanded[id(root)]


def load_documents(text: str, source: str = "<input>", max_chars: int = MAX_INPUT_CHARS) -> list[Any]:
    """Every document in ``text`` (JSON: one; YAML: each ``---`` document), or InvalidObject naming ``source``."""
    with cycle_collector_paused():  # a load builds a million small objects and no cycle (a recursive one is refused)
        return _load_documents(text, source, max_chars)


def _load_documents(text: str, source: str, max_chars: int) -> list[Any]:
    if len(text) > max_chars:
        raise InvalidObject("file", source, "", f"is larger than the limit of {max_chars / 2**20:g} MiB")
    if text.lstrip()[:1] in ("{", "["):
        try:
            return [json.loads(text)]
        except RecursionError:
            raise InvalidObject("file", source, "", "not valid JSON: nested too deeply") from None
        except ValueError as exc:
            if source.endswith(".json"):
                raise InvalidObject("file", source, "", f"not valid JSON: {exc}") from None
    return _load_yaml(text, source)


def _load_yaml(text: str, source: str) -> list[Any]:
    loader = _Loader(text)
    try:
        out = []
        while loader.check_data():
            out.append(loader.get_data())
        return out
    except _LimitExceeded as exc:
        raise InvalidObject("file", source, "", f"refused: {exc}") from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError, OverflowError) as exc:
        # The constructor raises ValueError on e.g. a bad timestamp or an integer of more than 4,300 digits.
        raise InvalidObject("file", source, "", f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
