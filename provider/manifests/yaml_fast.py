"""The fast reader: the Rust YAML 1.2 reader (yaml-rs), then one pydantic validation per kind per file.

Used only where it reads as the event readers do: for simple YAML holding only valid manifests without
`status`. Anything else (a YAML feature below, an error, a warning, a doubt) and it declines, so a file
gives the same manifests and findings whichever path reads it (tests/foundation/test_fast_reader.py).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
from collections import defaultdict
from collections.abc import MutableMapping
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, cast, get_args, get_origin

import orjson
import pydantic

try:  # a Rust YAML 1.2 reader: ~7x faster than libyaml's event stream, used only where it reads as we do
    import yaml_rs
except ImportError:  # pragma: no cover - a platform without its wheel: the libyaml paths do everything
    yaml_rs = None  # type: ignore[assignment]

from tenancy_kinds import API_VERSION, KINDS
from provider.manifests.limits import MAX_DEPTH, MAX_NODES

# Text the Rust reader is not trusted with, because it reads it differently from the YAML 1.2 core schema
# as `core_schema.core_value` does (digits with underscores, signed hex or octal, binary: numbers to it,
# strings to us; an empty block scalar at the end of a file; NaN, which JSON cannot carry), or because only
# the event readers word it (anchors, aliases, tags, merge keys, directives, '...' ends, content on a '---'
# line, tabs, carriage returns). Such a file takes the libyaml paths. The equivalence of the paths on
# everything else is a property test (tests/foundation/test_fast_reader.py).
_NOT_SIMPLE_TEXT = ("&", "*", "!", "\t", "\r", "<<", "\n%", "\n...", ".nan", ".NaN", ".NAN")
_NOT_SIMPLE_PATTERNS = (  # (substrings that must be present for the pattern to match, the pattern)
    (("_",), re.compile(r"[0-9]_|_[0-9]")),
    (("0x", "0X", "0o", "0O", "0b", "0B"), re.compile(r"[-+]0[xXoObB]|0[bB][01]")),
    (("|", ">"), re.compile(r"[|>][-+0-9]*[ \t]*(?:#.*)?$", re.MULTILINE)),
)
_MARKER = re.compile(r"^---(.*)$", re.MULTILINE)
_CONTENT = re.compile(r"^[ \t]*([^ \t#\n])", re.MULTILINE)  # the first character of a line that holds data
# Our limits, kept without counting: every value starts at a character of its own, so a document of at
# most MAX_NODES // 2 characters holds at most half MAX_NODES values; and a validated document nests no
# deeper than its kind's model allows (`_bounded`). Past either, the event readers read and refuse.
_MAX_SIMPLE_DOCUMENT = MAX_NODES // 2  # characters
_LIST_ADAPTERS: dict[str, pydantic.TypeAdapter[Any]] = {}


def simple_documents(
    text: str, known: MutableMapping[str, dict[str, Any]] | None = None
) -> list[tuple[dict[str, Any], int, int, str]] | None:
    """Each document validated and dumped as the event readers' path would, with its root's line and column
    and the digest of its text (`chunk_digest`); None unless the file is simple YAML (see `_NOT_SIMPLE_*`)
    holding only valid manifests without `status`.

    `known`: documents this code read before from the same file, by the digests of their texts (a
    document's text alone gives its document, wherever it stands in a simple file); each is taken for a
    document of that text, once, instead of reading and validating it again (one edited user of a hundred:
    one is read)."""
    if yaml_rs is None or not _simple(text):
        return None
    spans = _document_spans(text)
    if spans is None:
        return None
    if not spans:
        return []  # nothing but comments and blank lines
    digests = [chunk_digest(text, begin, end) for begin, end, _ in spans]
    reused: list[dict[str, Any] | None] = [None] * len(spans)
    if known:
        for i, (digest, (_, _, start)) in enumerate(zip(digests, spans, strict=True)):
            if start is not None:
                reused[i] = known.pop(digest, None)
    unknown = [i for i, (_, _, start) in enumerate(spans) if start is not None and reused[i] is None]
    values: list[Any] = [None] * len(spans)
    try:
        if len(unknown) == sum(start is not None for _, _, start in spans):
            value: Any = yaml_rs.loads(text, parse_datetime=False)
            if len(spans) > 1 and (not isinstance(value, list) or len(value) != len(spans)):
                return None
            values = value if len(spans) > 1 else [value]
        else:  # a document's text alone (between its markers) reads as it does in the file
            for i in unknown:
                begin, end, _ = spans[i]
                values[i] = yaml_rs.loads(text[begin:end], parse_datetime=False)
    except Exception:  # noqa: BLE001 - any refusal: the event readers find and word the problem
        return None
    by_kind: dict[str, list[int]] = defaultdict(list)
    kept: list[tuple[dict[str, Any], int | None, str]] = []
    documents: list[Any] = []
    for i, (document, (_, _, start)) in enumerate(zip(values, spans, strict=True)):
        if reused[i] is not None:
            kept.append((reused[i], start, digests[i]))  # type: ignore[arg-type]
            documents.append(reused[i])
            continue
        if document is None and start is None:
            continue  # an empty document, as the event readers skip it
        if not isinstance(document, dict) or start is None or "status" in document:
            return None
        name = document.get("kind")
        kind = KINDS.get(name) if isinstance(name, str) and document.get("apiVersion") == API_VERSION else None
        if kind is None or not _bounded(kind.name):
            return None
        by_kind[kind.name].append(len(kept))
        kept.append((document, start, digests[i]))
        documents.append(None)
    for name, indexes in by_kind.items():
        adapter = _LIST_ADAPTERS.get(name)
        if adapter is None:
            adapter = _LIST_ADAPTERS[name] = pydantic.TypeAdapter(cast(Any, list)[KINDS[name].document])
        try:
            models = adapter.validate_json(orjson.dumps([kept[i][0] for i in indexes]), strict=True)
        except (orjson.JSONEncodeError, pydantic.ValidationError):
            return None
        for i, dumped in zip(
            indexes, adapter.dump_python(models, by_alias=True, mode="json", exclude_unset=True), strict=True
        ):
            documents[i] = dumped
    located = []
    line, counted = 1, 0
    for (_, start, digest), document in zip(kept, documents, strict=True):
        assert start is not None
        line += text.count("\n", counted, start)
        counted = start
        located.append((document, line, start - text.rfind("\n", 0, start), digest))
    return located


def chunk_digest(text: str, begin: int, end: int) -> str:
    """The digest of one document's text (BLAKE2b, 128 bits): which documents of an edited file are the
    same text as before."""
    return hashlib.blake2b(text[begin:end].encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _simple(text: str) -> bool:
    """No `_NOT_SIMPLE_*` (substring tests first: a regular expression over every file costs seconds), and
    nothing but printable characters and newlines (libyaml refuses control characters the Rust reader takes;
    `isprintable` is stricter still: no-break spaces, BOMs, line separators take the event readers too)."""
    if text.startswith(("%", "...")) or any(s in text for s in _NOT_SIMPLE_TEXT):
        return False
    if not text.replace("\n", "").isprintable():
        return False
    return not any(
        any(s in text for s in needles) and pattern.search(text) for needles, pattern in _NOT_SIMPLE_PATTERNS
    )


def _document_spans(text: str) -> list[tuple[int, int, int | None]] | None:
    """Per document, where its text begins and ends and the offset of its first data character (None for
    an empty document), as the event readers split the file; None when a '---' line holds data or a
    document is too long for this path."""
    spans: list[tuple[int, int]] = []  # per document: where its text begins and ends
    for marker in _MARKER.finditer(text):
        rest = marker.group(1).strip()
        if rest and not rest.startswith("#"):
            return None
        if spans:
            spans[-1] = (spans[-1][0], marker.start())
        elif _CONTENT.search(text, 0, marker.start()) is not None:
            spans.append((0, marker.start()))  # data before the first '---': a document of its own
        spans.append((marker.end(), len(text)))
    if not spans:
        spans.append((0, len(text)))
    located: list[tuple[int, int, int | None]] = []
    for begin, end in spans:
        if end - begin > _MAX_SIMPLE_DOCUMENT:
            return None
        found = _CONTENT.search(text, begin, end)
        located.append((begin, end, found.start(1) if found else None))
    if len(located) == 1 and located[0][2] is None:
        return []  # nothing but comments and blank lines
    return located


@functools.cache
def _bounded(kind: str) -> bool:
    """Whether every valid document of `kind` without `status` (which this path declines) nests at most
    MAX_DEPTH levels, whatever it holds. A free-form field (Any, a bare dict) would let yaml-rs read past our
    limit: such a kind's files take the event readers, which enforce it."""
    fields = KINDS[kind].document.model_fields
    return 1 + max(_depth(f.annotation) for name, f in fields.items() if (f.alias or name) != "status") <= MAX_DEPTH


def _depth(ann: Any, seen: frozenset[type] = frozenset()) -> int:
    """The deepest nesting of lists and mappings a value validated as `ann` can have (MAX_DEPTH + 1: any)."""
    unbounded = MAX_DEPTH + 1
    while get_origin(ann) is Annotated:
        ann = get_args(ann)[0]
    origin, args = get_origin(ann), get_args(ann)
    if origin in (Union, UnionType):
        return max(_depth(a, seen) for a in args)
    if (
        origin is Literal
        or ann is NoneType
        or (isinstance(ann, type) and issubclass(ann, (str, int, float, enum.Enum)))
    ):
        return 0
    if isinstance(ann, type) and issubclass(ann, pydantic.BaseModel):
        if ann in seen:  # a model that contains itself nests as deep as a value likes
            return unbounded
        return 1 + max((_depth(f.annotation, seen | {ann}) for f in ann.model_fields.values()), default=0)
    if origin in (list, set, frozenset, tuple, dict) and args:
        items = [a for a in (args[1:] if origin is dict else args) if a is not Ellipsis]  # tuple[int, ...]
        return min(unbounded, 1 + max(_depth(a, seen) for a in items))
    return unbounded  # Any, a bare list or dict, a type this reader does not know: it may nest
