"""The table's patterns mean the same in every regular-expression dialect that reads them.

Python's `re` (our own checks, hypothesis), pydantic-core's Rust `regex` (the models) and ECMA-262 (editors,
check-jsonschema through `regress`, schemathesis reading schemas/) disagree on what `\\s` matches: U+0085 is
white space to Python and Rust but not to ECMA, U+FEFF to ECMA only. A URL with U+0085 in it passed the
OpenAPI document and was refused by the model. The patterns name their characters instead.
"""

import json
import re
from pathlib import Path

import pytest
import regress
from pydantic import TypeAdapter, ValidationError

from tenancy_kinds.selectors import SELECTOR_PATTERN, STRIPPED, SelectorError, parse_selector
from tenancy_kinds.specs import HTTPS_URL_PATTERN, USERNAME_PATTERN, HttpsUrl, Username

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
# Every character some dialect counts as white space, and their neighbours.
DOUBTFUL = (
    [chr(c) for c in range(0x00, 0x21)]
    + [chr(c) for c in range(0x7F, 0xA1)]
    + [
        "\u1680",
        "\u2000",
        "\u200a",
        "\u200b",
        "\u2028",
        "\u2029",
        "\u202f",
        "\u205f",
        "\u3000",
        "\ufeff",
        "\u180e",
    ]
)


def _model_accepts(adapter: TypeAdapter[str], value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    ("pattern", "annotated", "samples"),
    [
        (HTTPS_URL_PATTERN, HttpsUrl, lambda c: [f"https://{c}x.example", f"https://x.example/{c}"]),
        (USERNAME_PATTERN, Username, lambda c: [f"{c}ada", f"ada{c}", f"a{c}da"]),
    ],
    ids=["https-url", "username"],
)
def test_python_and_the_models_agree_on_every_doubtful_character(pattern, annotated, samples) -> None:
    adapter: TypeAdapter[str] = TypeAdapter(annotated)
    compared = 0
    for character in DOUBTFUL:
        for value in samples(character):
            model = _model_accepts(adapter, value)
            assert (re.fullmatch(pattern, value) is not None) == model, repr(value)  # anchored as ECMA anchors
            assert (regress.Regex(pattern).find(value) is not None) == model, repr(value)  # ECMA-262 itself
            compared += 1
    assert compared >= 2 * len(DOUBTFUL)
    # Spot checks that the patterns still mean what they say.
    assert not _model_accepts(adapter, samples("\x85")[0]) and not _model_accepts(adapter, samples("\ufeff")[0])


def test_no_schema_pattern_uses_a_dialect_dependent_class() -> None:
    patterns = []
    for path in sorted(SCHEMAS.glob("*.json")):
        text = path.read_text()
        patterns += [m for m in re.findall(r'"pattern":\s*("(?:[^"\\]|\\.)*")', text)]
    assert len(patterns) > 10
    offending = [json.loads(p) for p in patterns if re.search(r"(?<!\\)\\[sSwWdDbB]", json.loads(p))]
    assert offending == []


def test_the_selector_pattern_names_exactly_what_strip_removes() -> None:
    python_space = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
    named = re.compile(f"[{STRIPPED}]")
    assert all(named.fullmatch(c) for c in python_space)
    assert not any(named.fullmatch(c) for c in DOUBTFUL if not c.isspace())
    ecma = regress.Regex(f"^{SELECTOR_PATTERN.removeprefix('^')}")
    for selector in [" team = sales ", "\x85team=sales", "team=sales\u3000,\t!legacy", "\ufeffteam"]:
        accepted = True
        try:
            parse_selector(selector)
        except SelectorError:
            accepted = False
        assert (re.fullmatch(SELECTOR_PATTERN, selector) is not None) == accepted, repr(selector)
        assert (ecma.find(selector) is not None) == accepted, repr(selector)
