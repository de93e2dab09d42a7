"""YAML text → parser events (libyaml's C parser when present) → one node graph per document.

Composed here, not by PyYAML's composer, because that is where two guarantees live: nesting is bounded
(the C composer recurses natively and would crash on deep nesting before any Python guard could run), and
an anchor is registered only when complete, so an alias never points into its own ancestors (no cycles).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from provider.manifests.limits import MAX_DEPTH, too_deep

EVENT_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str) -> Iterator[Any]:
    """The parser's events for `text`, from `EVENT_LOADER` (looked up at each call, so tests can swap it)."""
    return iter(yaml.parse(text, Loader=EVENT_LOADER))


class Refused(Exception):
    """A YAML problem at a position; internal to the readers: always turned into a Finding."""

    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


@dataclass(eq=False)
class Node:
    kind: str  # "scalar" | "seq" | "map"
    tag: str | None
    value: Any  # str for scalars; list[Node] for seq; flat [key, value, key, value, ...] for map
    line: int  # 1-based
    col: int
    plain: bool = False  # an untagged plain scalar: its type comes from the core schema
    anchor: str | None = None


class _Composer:
    """One document's node graph, built from parser events; anchors are registered when complete, so an
    alias can never point into its own ancestors (no cycles)."""

    def __init__(self) -> None:
        self.stack: list[Node] = []
        self.anchors: dict[str, Node] = {}
        self.root: Node | None = None
        self.aliased = False  # whether an alias repeats a node (the document may expand past its text)

    def attach(self, node: Node) -> None:
        if self.stack:
            self.stack[-1].value.append(node)
        else:
            self.root = node

    def remember(self, anchor: str | None, node: Node) -> None:
        if anchor is not None:
            self.anchors[anchor] = node

    def scalar(self, event: yaml.ScalarEvent, line: int, col: int) -> None:
        node = Node("scalar", event.tag, event.value, line, col, plain=event.tag is None and bool(event.implicit[0]))
        self.remember(event.anchor, node)
        self.attach(node)

    def start(self, event: yaml.CollectionStartEvent, line: int, col: int) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise Refused(too_deep(), line, col)
        kind = "seq" if isinstance(event, yaml.SequenceStartEvent) else "map"
        self.stack.append(Node(kind, event.tag, [], line, col, anchor=event.anchor))

    def end(self) -> None:
        node = self.stack.pop()
        self.remember(node.anchor, node)
        self.attach(node)

    def alias(self, event: yaml.AliasEvent, line: int, col: int) -> None:
        target = self.anchors.get(event.anchor or "")
        if target is None:
            raise Refused(
                f"alias *{event.anchor} does not refer to an anchor &{event.anchor} defined earlier in this document",
                line, col,
            )
        self.aliased = True
        self.attach(target)


def documents(text: str) -> Iterator[tuple[Node | None, bool]]:
    """Each document's root node (None when empty) and whether it uses aliases; raises `Refused` or
    yaml.YAMLError at the first problem."""
    composed = 0
    try:
        for document in _compose(parse(text)):
            composed += 1
            yield document
    except yaml.MarkedYAMLError as e:
        if "nesting depth" not in (e.problem or "") or e.problem_mark is None:
            raise
        yield from itertools.islice(_past_native_limit(text, e.problem_mark.index), composed, None)


def _past_native_limit(text: str, stopped: int) -> Iterator[tuple[Node | None, bool]]:
    """The documents of a text libyaml refused at its own nesting limit (1,000 levels in PyYAML 6.0.4's
    build): it meets that limit while scanning ahead, before our composer has counted our 101st level, and
    at another place. Composed up to where libyaml stopped, the text crosses our limit first, at the place
    PyYAML's Python parser finds too: raise it there. Should it not (a build whose limit is below ours),
    the Python parser, which has no limit of its own, reads the whole text."""
    try:
        for _ in _compose(parse(text[:stopped])):
            pass
    except yaml.YAMLError:
        pass  # the text cut short ends inside a collection: ours was not crossed before
    return _compose(yaml.parse(text, Loader=yaml.SafeLoader))


def _compose(events: Iterable[Any]) -> Iterator[tuple[Node | None, bool]]:
    composer = _Composer()
    for event in events:
        mark = event.start_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        if isinstance(event, yaml.DocumentStartEvent):
            composer = _Composer()
        elif isinstance(event, yaml.DocumentEndEvent):
            yield composer.root, composer.aliased
        elif isinstance(event, yaml.ScalarEvent):
            composer.scalar(event, line, col)
        elif isinstance(event, yaml.CollectionStartEvent):
            composer.start(event, line, col)
        elif isinstance(event, yaml.CollectionEndEvent):
            composer.end()
        elif isinstance(event, yaml.AliasEvent):
            composer.alias(event, line, col)
