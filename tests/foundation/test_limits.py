"""Our limits, our words: nesting (100 levels), values per document (100,000, aliases expanded) and file
size (10 MiB) are enforced by our code and worded by us, through every reader path and whichever YAML
parser answers first. yaml-rs (the fast path) must decline such a file, never refuse it nor read past a
limit; libyaml's event path declines it too; the full reader then refuses it, fed by libyaml's C event
parser or by PyYAML's pure-Python one. Each case expects one exact finding (line, column, message) from
either parser: no message, and no position, may depend on which parser (or version) is installed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from provider.errors import ManifestError
from tenancy_kinds import KINDS
from provider.manifests import (
    load,
    load_text,
    yaml_events,
    yaml_fast,
)

FILE = "limits.yaml"
PARSERS = {"libyaml": "CSafeLoader", "PyYAML": "SafeLoader"}  # the event parser behind the libyaml and full readers
AVAILABLE = {name: getattr(yaml, loader) for name, loader in PARSERS.items() if hasattr(yaml, loader)}
DEEP = "the YAML nests deeper than 100 levels"


@contextmanager
def parsing_with(name: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(yaml_events, "EVENT_LOADER", AVAILABLE[name])
        yield


def refusals(text: str, parsers: tuple[str, ...] = tuple(PARSERS)) -> dict[str, list[tuple[int, int, str]]]:
    """Per event parser, the findings (line, col, message) of `text` read as a user's file is: yaml-rs
    first, which must decline it (never raise: a refusal is the event readers' to find and word), then
    libyaml's event path, then the full reader."""
    assert yaml_fast.simple_documents(text) is None
    seen = {}
    for name in (p for p in parsers if p in AVAILABLE):
        with parsing_with(name), pytest.raises(ManifestError) as raised:
            load_text(text, file=FILE)
        seen[name] = [(f.line, f.col, f.message) for f in raised.value.findings]
    return seen


def at(text: str, index: int) -> tuple[int, int]:
    """The 1-based line and column of a character offset."""
    return text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)


def nth(text: str, characters: str, n: int) -> int:
    """The offset of the n-th (1-based) occurrence of any of `characters`."""
    found = [i for i, c in enumerate(text) if c in characters]
    return found[n - 1]


def test_every_reader_and_parser_is_exercised() -> None:
    """The comparisons below mean something only if what they compare is installed."""
    assert yaml_fast.yaml_rs is not None, "yaml-rs is a declared dependency"
    assert set(AVAILABLE) == ({"libyaml", "PyYAML"} if yaml.__with_libyaml__ else {"PyYAML"})


def flow(levels: int) -> str:
    """`spec:` holding lists nested `levels` deep: the document nests levels + 1 (its root mapping)."""
    return "spec: " + "[" * levels + "]" * levels + "\n"


# Past ours; past libyaml's own limit (1,000 in PyYAML 6.0.4's build), which it meets while scanning ahead,
# before our composer has seen level 101; a bomb.
@pytest.mark.parametrize("levels", [100, 1_500, 100_000])
def test_flow_nesting_is_refused_at_our_limit(levels: int) -> None:
    text = flow(levels)
    expected = [(*at(text, nth(text, "[", 100)), DEEP)]  # the root mapping is level 1: the 100th '[' is 101
    assert refusals(text) == dict.fromkeys(AVAILABLE, expected)


def test_a_hundred_levels_are_within_the_limit() -> None:
    for name, messages in refusals(flow(99)).items():
        assert messages and not any("nests deeper" in m for _, _, m in messages), (name, messages)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda n: "".join("  " * i + "-\n" for i in range(n)), id="indented lists"),
        pytest.param(lambda n: "".join("  " * i + f"k{i}:\n" for i in range(n)), id="indented mappings"),
        pytest.param(lambda n: "- " * n + "x\n", id="one line of list entries"),
    ],
)
@pytest.mark.parametrize("levels", [101, 1_500])
def test_block_nesting_is_refused_at_our_limit(make: Callable[[int], str], levels: int) -> None:
    text = make(levels)
    starts = [i for i, c in enumerate(text) if c in "-k" and (i == 0 or text[i - 1] in " \n")]
    expected = [(*at(text, starts[100]), DEEP)]  # the 101st collection opens at the 101st entry
    assert refusals(text) == dict.fromkeys(AVAILABLE, expected)


def test_mixed_flow_nesting_is_refused_at_our_limit() -> None:
    text = "a: " + "[{a: " * 800 + "x" + "}]" * 800 + "\n"
    expected = [(*at(text, nth(text, "[{", 100)), DEEP)]
    assert refusals(text) == dict.fromkeys(AVAILABLE, expected)


def test_aliases_cannot_nest_a_document_past_our_limit() -> None:
    inner = "[" * 60 + "]" * 60
    text = f"a: &deep {inner}\nb: " + "[" * 50 + "*deep" + "]" * 50 + "\n"
    found = refusals(text)
    assert len({tuple(f) for f in found.values()}) == 1, found
    assert [m for _, _, m in found["PyYAML"]] == ["this document nests deeper than 100 levels (through aliases)"]


def test_an_alias_bomb_is_refused_at_our_limit() -> None:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    found = refusals(text)
    assert len({tuple(f) for f in found.values()}) == 1, found
    words = ("this document expands to more than 100,000 values (through aliases); refusing to read it: split it "
             "into several documents or repeat fewer aliases")
    assert [m for _, _, m in found["PyYAML"]] == [words]


@pytest.fixture
def free_form_team(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Team with a free-form field, as the table of kinds may grow one: yaml-rs would then read a document
    nested past our limit, and pydantic accept it."""
    team = KINDS["Team"]

    class FreeFormSpec(team.spec):  # type: ignore[name-defined,misc]
        notes: dict[str, Any] = pydantic.Field(default_factory=dict)

    monkeypatch.setitem(KINDS, "Team", dataclasses.replace(team, spec=FreeFormSpec))
    monkeypatch.setattr(yaml_fast, "_LIST_ADAPTERS", {})
    yaml_fast._bounded.cache_clear()
    yield
    yaml_fast._bounded.cache_clear()


def test_the_fast_path_keeps_our_limit_where_a_model_would_not(free_form_team: None) -> None:
    team = "apiVersion: tenancy/v1\nkind: Team\nmetadata: {name: t, organization: acme}\nspec:\n  displayName: T\n"
    assert load_text(team + "  notes: {a: [[1]]}\n").manifests[0].spec["notes"] == {"a": [[1]]}
    text = team + "  notes: {deep: " + "[" * 150 + "]" * 150 + "}\n"
    expected = [(*at(text, nth(text, "[", 98)), DEEP)]  # the document, spec and notes are levels 1 to 3
    assert refusals(text) == dict.fromkeys(AVAILABLE, expected)


@pytest.mark.skipif("libyaml" not in AVAILABLE, reason="PyYAML without libyaml")
def test_a_document_of_too_many_values_is_refused_at_our_limit() -> None:
    """Through libyaml only: PyYAML's Python parser takes 5 to 15 s to produce 100,001 values (twice: the
    middle reader, then the full one). The count is ours whichever parser feeds it, as the alias bomb above
    shows through both; a parser only supplies the events and their marks."""
    text = "a: [" + ",".join(["1"] * 100_001) + "]\n"
    # the root mapping and the list count as values: the 99,999th item is the 100,001st value
    words = "this document expands to more than 100,000 values; refusing to read it: split it into several documents"
    assert refusals(text, ("libyaml",)) == {"libyaml": [(*at(text, 4 + 2 * 99_998), words)]}


def test_a_file_over_the_size_limit_is_refused_before_any_parser(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(10 * 2**20 + 1)  # sparse: refused from its size, never read
    for name in AVAILABLE:
        with parsing_with(name), pytest.raises(ManifestError) as raised:
            load([big])
        found = [(f.line, f.col, f.message) for f in raised.value.findings]
        assert found == [(1, 1, "file is 10.0 MiB; manifests are limited to 10 MiB")], name


@pytest.mark.parametrize("make", ["fifo", "device"])
def test_a_manifest_that_is_not_a_regular_file_is_refused_without_reading_it(tmp_path: Path, make: str) -> None:
    directory = tmp_path / "m"
    directory.mkdir()
    odd = directory / "odd.yaml"
    if make == "fifo":
        os.mkfifo(odd)  # reading it would wait for a writer forever
    else:
        odd.symlink_to("/dev/zero")  # reading it would never end
    with pytest.raises(ManifestError) as raised:
        load([directory])
    [finding] = raised.value.findings
    assert (finding.file, finding.line) == (str(odd), 1)
    assert finding.message.startswith("not a regular file")
