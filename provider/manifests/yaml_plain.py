"""Plain YAML → values straight from the parser's events, without nodes or positions.

The middle reader, for files yaml-rs declines (a '!' or '&' in a comment, CRLF line ends, block scalars)
that use no anchor, alias, tag or merge key: it builds values without the full reader's node graph and
position table, about twice as fast. It declines anything else, and the full reader reads the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from provider.manifests import yaml_events
from provider.manifests.core_schema import MERGE, core_value
from provider.manifests.limits import MAX_DEPTH, MAX_NODES

_NOT_YET = object()


def plain_values(text: str) -> list[tuple[Any, int, int]] | None:
    """Each non-empty document's value and root position, built straight from the parser's events, or
    None when the text needs the full reader (an anchor, alias, tag or merge key, a duplicate or non-text
    key, a limit reached, a syntax error): the same values for every text it accepts."""
    documents: list[tuple[Any, int, int]] = []
    stack: list[Any] = []  # the open lists and dicts
    keys: list[Any] = []  # per open dict: the key waiting for its value (_NOT_YET when a key comes next)
    root: Any = _NOT_YET
    line = col = count = 0
    events: Iterator[Any] = yaml_events.parse(text)  # dispatched on exact types below
    try:
        for event in events:
            cls = type(event)
            if cls is yaml.ScalarEvent:
                if event.anchor is not None or event.tag is not None:
                    return None
                plain = bool(event.implicit[0])
                if stack and type(stack[-1]) is dict and keys[-1] is _NOT_YET:
                    name = event.value
                    if (plain and name == MERGE) or name in stack[-1]:
                        return None
                    keys[-1] = name
                    continue
                value: Any = core_value(event.value) if plain else event.value
                opened = False
            elif cls is yaml.MappingStartEvent or cls is yaml.SequenceStartEvent:
                if event.anchor is not None or event.tag is not None or len(stack) >= MAX_DEPTH:
                    return None
                if stack and type(stack[-1]) is dict and keys[-1] is _NOT_YET:
                    return None  # a list or a mapping as a key
                value = {} if cls is yaml.MappingStartEvent else []
                opened = True
            elif cls is yaml.MappingEndEvent or cls is yaml.SequenceEndEvent:
                stack.pop()
                keys.pop()
                continue
            elif cls is yaml.DocumentStartEvent:
                root, count = _NOT_YET, 0
                continue
            elif cls is yaml.DocumentEndEvent:
                if root is not _NOT_YET and root is not None:
                    documents.append((root, line, col))
                continue
            elif cls is yaml.AliasEvent:
                return None
            else:
                continue
            count += 1
            if count > MAX_NODES:
                return None
            if not stack:
                root = value
                mark = event.start_mark
                line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
            elif type(stack[-1]) is list:
                stack[-1].append(value)
            else:
                stack[-1][keys[-1]] = value
                keys[-1] = _NOT_YET
            if opened:
                stack.append(value)
                keys.append(_NOT_YET)
    except yaml.YAMLError:
        return None
    return documents
