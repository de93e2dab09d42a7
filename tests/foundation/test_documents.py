"""Live documents kept compact (provider.documents): what is read back is what was given, by position and
by key, whatever the documents; nothing a reader changes reaches what is kept."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from provider.documents import Documents, by_key
from provider.live import LiveDelta, applied
from tenancy_kinds import framing, ResourceKey

from tests.builders import live, org, team, user

names = st.sampled_from(["ann", "bob", "cy", "devs", "x-1"])
organizations = st.sampled_from(["acme", "umbrella"])
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def documents(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Organization", "User", "Team"]))
    name = draw(names)
    document = (
        org(name) if kind == "Organization" else user(draw(organizations), name) if kind == "User"
        else team(draw(organizations), name, [draw(names)])
    )
    document["spec"]["extra"] = draw(values)
    return live(document, stack="s")


@given(st.lists(documents(), max_size=12))
def test_what_is_read_back_is_what_was_given(given_documents: list[dict[str, Any]]) -> None:
    kept = Documents.of(given_documents)
    assert len(kept) == len(given_documents) and list(kept) == given_documents == kept
    assert [kept[i] for i in range(len(kept))] == given_documents and kept[1:3] == given_documents[1:3]
    assert kept.keys == [ResourceKey.of(d) for d in given_documents]
    looked_up = by_key(kept)
    expected = by_key(given_documents)
    assert list(looked_up) == list(expected) and len(looked_up) == len(expected)
    assert all(looked_up[key] == expected[key] and key in looked_up for key in expected)


def test_a_document_read_is_a_copy() -> None:
    kept = Documents.of([live(user("acme", "ann"), stack="s")])
    kept[0]["spec"]["displayName"] = "changed"
    by_key(kept)[ResourceKey("User", "acme", "ann")]["metadata"].clear()
    assert kept[0] == live(user("acme", "ann"), stack="s")


def test_a_framed_body_gathered_compact_reads_as_the_decoded_one() -> None:
    items = [live(user("acme", f"u{i}"), stack="s") for i in range(7)]
    body = b"".join(framing.frame({"revision": 3}, framing.chunks_of(items, 3)))
    value = framing.loads(body, items=Documents)
    assert isinstance(value["items"], Documents) and value == {"revision": 3, "items": items}


def test_a_delta_applied_to_kept_documents() -> None:
    ann, bob, cy = (live(user("acme", n), stack="s") for n in ("ann", "bob", "cy"))
    bob2 = {**bob, "spec": {**bob["spec"], "displayName": "Bob 2"}}
    delta = LiveDelta(9, 8, "db", Documents.of([bob2, cy]), [ResourceKey("User", "acme", "ann")])
    assert applied(Documents.of([ann, bob]), delta) == [bob2, cy] == applied([ann, bob], delta)
