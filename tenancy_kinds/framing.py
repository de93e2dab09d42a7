"""Big JSON bodies with their items a chunk per line, so that no reader builds the parse tree of a whole body.

orjson parses a text into a tree about ten times the text's size before it makes Python objects: a 56 MB
export of 100,000 resources peaked at 860 MB while it was decoded, and a 1,000,000-resource export would
take 6 GB. So the big bodies (the backend's exports and the provider's readers' hand-over)
are written as one JSON value laid out on lines: the object's other fields and `"items":[` on the first
line, then the items a chunk per line (each line ends with a comma but the last), then `]}`. Only
whitespace differs from the compact form; `loads` decodes such a text a line at a time and any other JSON
text whole, and returns what `orjson.loads` returns for the same text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import orjson

_OPEN = b'"items":[\n'
_CLOSE = b"\n]}"


def frame(head: Mapping[str, Any], chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The parts of the body `{**head, "items": [...]}` with each chunk (its items' JSON, comma-separated)
    on a line of its own. `head` must not hold "items"."""
    opening = orjson.dumps(dict(head))[:-1]
    yield opening + (b"," if len(opening) > 1 else b"") + _OPEN
    first = True
    for chunk in chunks:
        yield chunk if first else b",\n" + chunk
        first = False
    yield _CLOSE


def _compact(items: list[Any]) -> bytes:
    return orjson.dumps(items)[1:-1]


def chunks_of(
    items: Iterable[Any], size: int, encode: Callable[[list[Any]], bytes] = _compact
) -> Iterator[bytes]:
    """The items, `size` at a time, each chunk encoded by `encode` as its items' JSON, comma-separated (by
    default one orjson call per chunk); an iterator of items is read as it comes."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield encode(batch)
            batch = []
    if batch:
        yield encode(batch)


def loads(data: bytes, start: int = 0, items: Callable[[], Any] = list) -> Any:
    """The JSON value of `data[start:]` (no copy of it made): a framed body (see `frame`) decoded a line at a
    time, any other text whole. Raises orjson.JSONDecodeError as `orjson.loads` does. A framed body's items
    are gathered in what `items` makes (anything with `extend`, given each line's items in turn), so that a
    reader can keep them in another form than the decoded one; a text decoded whole has them in a list."""
    value = _framed(data, start, items)
    return orjson.loads(memoryview(data)[start:] if start else data) if value is None else value


def _framed(data: bytes, start: int, make_items: Callable[[], Any]) -> dict[str, Any] | None:
    """A framed body's value, or None when `data[start:]` is not laid out so (then it is decoded whole)."""
    first = data.find(b"\n", start)
    if first < 0 or not data.endswith(_CLOSE) or not data[start : first + 1].endswith(_OPEN):
        return None
    try:
        value = orjson.loads(data[start:first] + b"]}")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or value.get("items") != []:
        return None  # "items" inside another field, or not the object's own
    items = make_items()
    view = memoryview(data)
    end_of_items = len(data) - len(_CLOSE)
    begin, comma = first + 1, False
    while begin < end_of_items:
        end = data.find(b"\n", begin, end_of_items)
        last = end < 0
        if last:
            end = end_of_items
        elif data[end - 1 : end] != b",":
            return None
        try:
            chunk = orjson.loads(b"".join((b"[", view[begin : end if last else end - 1], b"]")))
        except orjson.JSONDecodeError:
            return None  # the text as a whole words the error, or is not framed after all
        items.extend(chunk)
        begin, comma = end + 1, not last
    if comma:
        return None  # a comma before the close
    value["items"] = items
    return value


def lines_of(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a text that comes in blocks (a streamed body, a file read a block at a time), without
    their newline; only b"\\n" ends a line."""
    rest = b""
    for block in blocks:
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        yield from lines
    yield rest


class NotFramed(ValueError):
    """A streamed body that is not laid out as `frame` lays it out (read it whole instead)."""


def loads_lines(lines: Iterable[bytes], items: Callable[[], Any] = list) -> dict[str, Any]:
    """The value of a framed body whose lines (without their newline) come one at a time, as a streamed
    response gives them: never held whole, each line decoded as it comes, its items gathered in what
    `items` makes. Raises NotFramed for any other text (having read some of it: the caller reads the body
    again whole, which `loads` decodes whatever its layout)."""
    line = iter(lines)
    first = next(line, b"")
    if not (first + b"\n").endswith(_OPEN):
        raise NotFramed("the first line does not open the items")
    try:
        value = orjson.loads(first + b"]}")
    except orjson.JSONDecodeError:
        raise NotFramed("the first line is not an object's opening") from None
    if not isinstance(value, dict) or value.get("items") != []:
        raise NotFramed("the items are not the object's own")
    gathered = items()
    held = next(line, None)
    while held is not None:
        following = next(line, None)
        if following is None:  # the last line closes the items
            if held != _CLOSE[1:]:
                raise NotFramed("the body does not end with the items' close")
            break
        if following == _CLOSE[1:]:
            chunk = held
        elif held.endswith(b","):
            chunk = held[:-1]
        else:
            raise NotFramed("a line of items does not end with a comma")
        try:
            gathered.extend(orjson.loads(b"[" + chunk + b"]"))
        except orjson.JSONDecodeError:
            raise NotFramed("a line of items is not JSON") from None
        held = following
    else:
        raise NotFramed("the body ends before the items' close")
    value["items"] = gathered
    return value


__all__ = ["NotFramed", "chunks_of", "frame", "lines_of", "loads", "loads_lines"]
