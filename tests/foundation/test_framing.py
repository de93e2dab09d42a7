"""Big JSON bodies a chunk of items per line (tenancy_kinds.framing): decoded a line at a time, and always to
what orjson decodes from the same text, whatever the text."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenancy_kinds import framing

scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10,
)
heads = st.dictionaries(st.text(max_size=6).filter(lambda k: k != "items"), values, max_size=3)


def _body(head: dict[str, Any], items: list[Any], size: int) -> bytes:
    return b"".join(framing.frame(head, framing.chunks_of(items, size)))


def _decoded(text: bytes) -> tuple[str, Any]:
    try:
        return "value", orjson.loads(text)
    except orjson.JSONDecodeError:
        return "error", None


def _framed_decoded(text: bytes, start: int = 0) -> tuple[str, Any]:
    try:
        return "value", framing.loads(text, start)
    except orjson.JSONDecodeError:
        return "error", None


@settings(max_examples=150, deadline=None)
@given(head=heads, items=st.lists(values, max_size=30), size=st.integers(1, 12))
def test_a_framed_body_is_its_value_a_chunk_per_line(head: dict[str, Any], items: list[Any], size: int) -> None:
    body = _body(head, items, size)
    assert framing.loads(body) == {**head, "items": items} == orjson.loads(body)
    lines = body.split(b"\n")
    chunks = -(-len(items) // size)
    assert len(lines) == 2 + max(chunks, 1)  # the head, a line per chunk (an empty one for none), the close
    prefix = b'{"other":"file header"}\n'
    assert framing.loads(prefix + body, len(prefix)) == {**head, "items": items}


@st.composite
def edited_bodies(draw: st.DrawFn) -> bytes:
    """A framed body with one byte changed, taken out or put in."""
    body = _body({"revision": 1}, draw(st.lists(values, min_size=1, max_size=12)), draw(st.integers(1, 4)))
    at = draw(st.integers(0, 10_000)) % len(body)
    edit = draw(st.sampled_from([b"", b",", b"\n", b"]", b"[", b"}", b"{", b'"', b"1", b" "]))
    return body[:at] + edit + body[at + (1 if draw(st.booleans()) else 0) :]


@settings(max_examples=300, deadline=None)
@given(text=edited_bodies())
def test_any_text_decodes_as_orjson_decodes_it(text: bytes) -> None:
    """A framed body with one byte changed, taken out or put in: the same value or the same refusal as the
    text decoded whole (a line that is no chunk is never taken for one)."""
    assert _framed_decoded(text) == _decoded(text)


@pytest.mark.parametrize(
    "text",
    [
        b'{"items":[\n1,\n]}',  # a comma before the close
        b'{"items":[\n1\n2\n]}',  # two lines without the comma between
        b'{"items":[\n1,\n\n]}',  # an empty last line
        b'{"a":{"items":[\n1\n]}}',  # "items" of another object
        b'{"items":[1],"items":[\n2\n]}',  # the last "items" counts, as in orjson
        b'{\n"items":[1]\n}',  # laid out otherwise: decoded whole
        b'[\n1,\n2\n]',
        b"",
    ],
)
def test_texts_laid_out_otherwise_decode_whole(text: bytes) -> None:
    assert _framed_decoded(text) == _decoded(text)


@settings(max_examples=150, deadline=None)
@given(head=heads, items=st.lists(values, max_size=30), size=st.integers(1, 12))
def test_a_framed_body_streamed_a_line_at_a_time_is_its_value(
    head: dict[str, Any], items: list[Any], size: int
) -> None:
    body = _body(head, items, size)
    assert framing.loads_lines(iter(body.split(b"\n"))) == {**head, "items": items}


@settings(max_examples=300, deadline=None)
@given(text=edited_bodies())
def test_a_streamed_text_is_its_value_or_not_framed(text: bytes) -> None:
    """Streamed, a framed body with one byte changed, taken out or put in gives what orjson decodes from
    it, or NotFramed (the caller then reads it whole); never another value, never a text orjson refuses."""
    try:
        value = framing.loads_lines(iter(text.split(b"\n")))
    except framing.NotFramed:
        return
    assert _decoded(text) == ("value", value)
