"""YAML manifest files → validated resource documents, each field located as `file:line:col`.

The YAML is read as a stream of parser events (libyaml's C parser when present) and composed here, not by
PyYAML's composer or constructor, because that is where the guarantees live:

- safe values only: the YAML 1.2 core schema (strings, numbers, true/false, null, lists, mappings, merge
  keys). Any other tag (`!!python/object`, `!custom`) is an error, never constructed. `yes`/`no`/`on`/`off`
  stay strings, as in YAML 1.2 and in editors, so `country: NO` is Norway, not false;
- bounded: files over 10 MiB, nesting deeper than 100 levels and documents that expand (through aliases)
  to more than 100,000 values are refused, so an alias bomb costs milliseconds, not the machine; the C
  composer recurses natively and would crash on deep nesting before any Python guard could run;
- duplicate mapping keys are errors (PyYAML silently keeps the last one);
- every value's position is kept, so every error names a file, a line and a column (1-based).

Each document is then checked against its kind's pydantic model from the table of kinds (strict, from
JSON, so exactly what the published JSON Schemas accept), and every error is reworded for a person.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import multiprocessing
import os
import re
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Union, cast, get_args, get_origin

import orjson
import pydantic
import yaml

try:  # a Rust YAML 1.2 reader: ~7x faster than libyaml's event stream, used only where it reads as we do
    import yaml_rs
except ImportError:  # pragma: no cover - a platform without its wheel: the libyaml paths do everything
    yaml_rs = None  # type: ignore[assignment]

import tenancy_kinds
from provider.errors import ConfigError, Finding, ManifestError, Severity
from tenancy_kinds import (
    API_VERSION,
    DNS_PATTERN,
    EMAIL_PATTERN,
    HTTPS_URL_PATTERN,
    KINDS,
    LABEL_KEY_PATTERN,
    SERVER_METADATA,
    SLUG_PATTERN,
    Kind,
    ResourceKey,
)

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 100
MAX_NODES = 100_000  # per document, aliases expanded: far above any real manifest, far below a bomb
PARALLEL_MIN_FILES = 64  # below this, starting a second process costs more than it saves
_START_METHODS = multiprocessing.get_all_start_methods()
SUFFIXES = (".yaml", ".yml")
CONFIG_NAMES = ("tenancy.yaml", "tenancy.yml")
# Other tools' YAML that lives beside manifests: a Pulumi project reading these manifests through
# `provider.pulumi.from_manifests` has its Pulumi.yaml and Pulumi.<stack>.yaml in the same directory.
FOREIGN_FILES = re.compile(r"Pulumi(\.[^/]+)?\.ya?ml")
CONFIG_FIELDS = ("stack", "policy")

FieldPath = tuple[str | int, ...]

_EVENT_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SLUG = re.compile(SLUG_PATTERN)


# --- public data ------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Origin:
    """A position in a manifest file; line and col are 1-based."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass
class Manifest:
    """One validated resource document and where it came from."""

    key: ResourceKey
    kind: Kind
    document: dict[str, Any]  # JSON-plain, camelCase, only what the file says (no defaults filled in)
    origin: Origin
    root: Path  # the directory given on the command line: secrets files may not leave it
    positions: dict[FieldPath, Origin] = field(default_factory=dict, repr=False, compare=False)
    # Set by the loader's fast path: computes `positions` on first need (most manifests never need them).
    locate: Callable[[], dict[FieldPath, Origin]] | None = field(default=None, repr=False, compare=False)

    @property
    def spec(self) -> dict[str, Any]:
        return self.document.get("spec") or {}

    @property
    def organization(self) -> str:
        """The owning organization: the Organization itself, or metadata.organization."""
        return self.key.name if not self.kind.scoped else self.key.organization

    def field_origin(self, path: FieldPath) -> Origin:
        """Where a field is written, or its nearest written parent (a missing field points at its parent)."""
        path = tuple(path)
        if self.locate is not None:
            self.positions, self.locate = self.locate(), None
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.origin

    def finding(self, path: FieldPath, text: str, severity: Severity = Severity.ERROR) -> Finding:
        """A finding located at `path`, its message prefixed with the dotted field name."""
        at = self.field_origin(path)
        dotted = dotted_path(path)
        message = f"{dotted}: {text}" if dotted else text
        return Finding(at.file, at.line, at.col, severity, message, dotted)


@dataclass
class ManifestSet:
    manifests: list[Manifest]
    stack: str | None = None
    roots: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # the manifest files read (config files excluded)
    warnings: list[Finding] = field(default_factory=list)
    policies: list[Path] = field(default_factory=list)  # `policy:` of tenancy.yaml, relative to where it is

    def __iter__(self) -> Iterator[Manifest]:
        return iter(self.manifests)

    def __len__(self) -> int:
        return len(self.manifests)

    def of_kind(self, name: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind.name == name]

    def get(self, key: ResourceKey) -> Manifest | None:
        return next((m for m in self.manifests if m.key == key), None)

    def documents(self) -> list[dict[str, Any]]:
        return [m.document for m in self.manifests]


def dotted_path(path: Sequence[str | int]) -> str:
    """("spec", "members", 2) → "spec.members[2]"."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


# --- entry points -----------------------------------------------------------------------------------


def load(paths: Iterable[str | os.PathLike[str]]) -> ManifestSet:
    """Read and validate every manifest under `paths`. Raises `ManifestError` listing every error found.

    Raises `ConfigError` for a path that does not exist or holds no manifest at all.
    """
    manifest_set, findings = collect(paths)
    if any(f.severity is Severity.ERROR for f in findings):
        raise ManifestError(findings)
    return manifest_set


def collect(paths: Iterable[str | os.PathLike[str]]) -> tuple[ManifestSet, list[Finding]]:
    """Like `load`, but returns the valid manifests with every finding instead of raising on errors."""
    files, roots = discover(paths)
    if not files:
        shown = ", ".join(str(r) for r in roots)
        raise ConfigError(f"no manifests (*.yaml, *.yml) found in {shown}")
    findings: list[Finding] = []
    manifests: list[Manifest] = []
    for file_manifests, file_findings in _read_files(files):
        manifests.extend(file_manifests)
        findings.extend(file_findings)
    manifests = _without_duplicates(manifests, findings)
    stack, policies = _read_config(roots, findings)
    warnings = [f for f in findings if f.severity is Severity.WARNING]
    manifest_set = ManifestSet(manifests, stack, roots, [f for f, _ in files], warnings, policies)
    return manifest_set, sorted(findings)


def load_text(text: str, file: str = "manifest.yaml", root: str | os.PathLike[str] = ".") -> ManifestSet:
    """Validate manifests given as text (tests, tools); no stack is read. Raises `ManifestError`."""
    manifests, findings = _parse_manifests(text, file, Path(root))
    manifests = _without_duplicates(manifests, findings)
    if any(f.severity is Severity.ERROR for f in findings):
        raise ManifestError(findings)
    return ManifestSet(manifests, None, [Path(root)], [], [f for f in findings if f.severity is Severity.WARNING])


def discover(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """The manifest files under `paths` as (file, root) pairs, and the roots: directories as given, or a
    file argument's directory. Directories are read recursively and sorted; hidden entries are skipped
    (a repository's .github/ holds YAML that is not ours), and so are the tenancy.yaml config files and
    Pulumi's project and stack files (Pulumi.yaml, Pulumi.<stack>.yaml)."""
    files: list[tuple[Path, Path]] = []
    roots: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ConfigError(f"{path}: no such file or directory")
        root = path if path.is_dir() else path.parent
        if root not in roots:
            roots.append(root)
        found = _walk(path) if path.is_dir() else ([] if _ignored(path.name) else [path])
        for file in found:
            real = file.resolve()
            if real not in seen:
                seen.add(real)
                files.append((file, root))
    if not roots:
        raise ConfigError("no manifest path given")
    return files, roots


def _walk(directory: Path) -> list[Path]:
    found: list[Path] = []
    for current, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        wanted = (n for n in names if n.endswith(SUFFIXES) and not n.startswith(".") and not _ignored(n))
        found.extend(Path(current) / n for n in wanted)
    return sorted(found, key=lambda p: p.relative_to(directory).parts)


def _ignored(name: str) -> bool:
    """Config and other tools' files, never manifests."""
    return name in CONFIG_NAMES or FOREIGN_FILES.fullmatch(name) is not None


# --- files --------------------------------------------------------------------------------------------


def _read_text(file: Path) -> tuple[str | None, list[Finding]]:
    """The file's text, or a finding saying why it cannot be read."""

    def problem(message: str, line: int = 1) -> tuple[None, list[Finding]]:
        return None, [Finding(str(file), line, 1, Severity.ERROR, message)]

    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            return problem(f"file is {size / 2**20:.1f} MiB; manifests are limited to {MAX_FILE_BYTES // 2**20} MiB")
        data = file.read_bytes()
    except OSError as e:
        return problem(f"cannot read the file ({e.strerror or type(e).__name__})")
    if len(data) > MAX_FILE_BYTES:  # it grew since the stat, or is a device
        return problem(f"file is larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        return problem(f"the file is not UTF-8 text (invalid byte at offset {e.start})", line)


def _read_files(files: list[tuple[Path, Path]]) -> list[tuple[list[Manifest], list[Finding]]]:
    """Every file's manifests and findings, in order: from the cache where it has them, the rest read."""
    results: list[tuple[list[Manifest], list[Finding]] | None] = [None] * len(files)
    if _cache_dir() is not None:
        for index, (file, root) in enumerate(files):
            cached = _cached_file(file, root)
            if cached is not None:
                results[index] = (cached, [])
    missing = [index for index, found in enumerate(results) if found is None]
    for index, read in zip(missing, _read_many([files[i] for i in missing])):
        results[index] = read
    return [read for read in results if read is not None]


def _read_many(files: list[tuple[Path, Path]]) -> list[tuple[list[Manifest], list[Finding]]]:
    """Every file's manifests and findings, in order. Many files are read by two processes: a forked child
    reads the second half while this process reads the first (reading is CPU-bound, and on two cores it
    halves a 100,000-resource load). Anything unexpected in the child: this process reads its half too."""
    if len(files) < PARALLEL_MIN_FILES or (os.cpu_count() or 1) < 2 or "fork" not in _START_METHODS:
        return [_read_file(file, root) for file, root in files]
    half = len(files) // 2
    try:
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
        future = pool.submit(_read_plainly, files[half:])
    except Exception:  # noqa: BLE001 - no second process here (a sandbox, a limit): one reads all
        return [_read_file(file, root) for file, root in files]
    mine = [_read_file(file, root) for file, root in files[:half]]
    try:
        encoded = future.result()
    except Exception:  # noqa: BLE001 - the child broke (killed, out of memory): its half is read here
        return mine + [_read_file(file, root) for file, root in files[half:]]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    theirs = []
    for (file, root), documents in zip(files[half:], orjson.loads(encoded)):
        if documents is None:  # a file with findings: read here, where every field keeps its position
            theirs.append(_read_file(file, root))
            continue
        theirs.append((_validated(documents, None, str(file), root), []))
    return mine + theirs


def _read_plainly(files: list[tuple[Path, Path]]) -> bytes:
    """In the child: each file's documents with their root positions, as JSON (quicker to hand over than
    pickled Manifests); None for a file with findings, which the parent reads again to word them."""
    documents: list[list[tuple[dict[str, Any], int, int]] | None] = []
    for file, root in files:
        manifests, findings = _read_file(file, root)
        documents.append(None if findings else [(m.document, m.origin.line, m.origin.col) for m in manifests])
    return orjson.dumps(documents)


def _read_file(file: Path, root: Path) -> tuple[list[Manifest], list[Finding]]:
    text, findings = _read_text(file)
    if text is None:
        return [], findings
    entry = _cache_entry(text)
    cached = None if entry is None else _from_cache(entry, text, str(file), root)
    if cached is not None:
        return cached, []
    manifests, findings = _parse_manifests(text, str(file), root)
    if entry is not None and not findings:
        _to_cache(entry, manifests)
    return manifests, findings


def _cached_file(file: Path, root: Path) -> list[Manifest] | None:
    """The file's manifests from the cache, or None (not cached, or unreadable: `_read_file` words why)."""
    text, _ = _read_text(file)
    entry = None if text is None else _cache_entry(text)
    return None if entry is None or text is None else _from_cache(entry, text, str(file), root)


# --- the cache of validated files ---------------------------------------------------------------------
#
# A file that validated without a finding is remembered by the SHA-256 of its text and of the code that
# validated it (this module, the table of kinds, pydantic's version): the same bytes read by the same code
# give the same documents, so an edit or an upgrade never meets a stale entry. Only documents are kept
# (secret *sources*, never values); positions are recomputed from the text when a message needs them.

CACHE_FORMAT = b"tenancy-manifest-cache/1"


def _cache_dir() -> Path | None:
    """$TENANCY_CACHE_DIR, else $XDG_CACHE_HOME/tenancy/manifests (~/.cache/...); None with TENANCY_NO_CACHE."""
    if os.environ.get("TENANCY_NO_CACHE"):
        return None
    configured = os.environ.get("TENANCY_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tenancy" / "manifests"


def _cache_entry(text: str) -> Path | None:
    cache = _cache_dir()
    if cache is None:
        return None
    key = hashlib.sha256(_cache_salt() + text.encode("utf-8", "surrogatepass")).hexdigest()
    return cache / key[:2] / key


@functools.cache
def _cache_salt() -> bytes:
    digest = hashlib.sha256(CACHE_FORMAT)
    kinds = sorted(Path(tenancy_kinds.__file__).parent.glob("*.py"))
    for module in (Path(__file__), *kinds):
        digest.update(module.read_bytes())
    digest.update(pydantic.VERSION.encode())
    return digest.digest()


def _from_cache(entry: Path, text: str, file: str, root: Path) -> list[Manifest] | None:
    try:
        return _validated(orjson.loads(entry.read_bytes()), text, file, root)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):  # absent, unreadable or not ours: read
        return None


def _to_cache(entry: Path, manifests: list[Manifest]) -> None:
    """Write the entry atomically; a cache that cannot be written is no cache, never an error."""
    try:
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = orjson.dumps([(m.document, m.origin.line, m.origin.col) for m in manifests])
        temporary = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, entry)
    except (OSError, TypeError):
        return


def _parse_manifests(text: str, file: str, root: Path) -> tuple[list[Manifest], list[Finding]]:
    fast = _parse_simple_manifests(text, file, root)
    if fast is None:
        fast = _parse_plain_manifests(text, file, root)
    if fast is not None:
        return fast, []
    manifests: list[Manifest] = []
    findings: list[Finding] = []
    for value, positions in _values(text, file, findings):
        manifest = _manifest(value, positions, file, root, findings)
        if manifest is not None:
            manifests.append(manifest)
    return manifests, findings


def _parse_plain_manifests(text: str, file: str, root: Path) -> list[Manifest] | None:
    """The fast path for the common file: valid manifests in plain YAML (no anchor, alias, merge key or tag).

    None when anything in the file needs the full reader (`_values` + `_manifest`): a YAML feature above, a
    limit reached, a syntax error, a finding of any kind. Then the full reader runs on the whole file and
    words every finding; so both paths give the same manifests and the same findings. Field positions are
    only computed (by the full reader, once per file) when a rule asks where a field is written.
    """
    documents = _plain_values(text)
    if documents is None:
        return None
    lazy = _FilePositions(text, file)
    manifests: list[Manifest] = []
    for index, (value, line, col) in enumerate(documents):
        findings: list[Finding] = []
        manifest = _manifest(value, {(): Origin(file, line, col)}, file, root, findings)
        if manifest is None or findings:
            return None
        manifest.locate = functools.partial(lazy.document, index)
        manifests.append(manifest)
    return manifests


# Text the Rust reader is not trusted with, because it reads it differently from the YAML 1.2 core schema
# as `_core_value` does (digits with underscores, signed hex or octal, binary: numbers to it, strings to
# us; an empty block scalar at the end of a file; NaN, which JSON cannot carry), or because only the
# event readers word it (anchors, aliases, tags, merge keys, directives, '...' ends, content on a '---'
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
_MAX_SIMPLE_DOCUMENT = 2 * MAX_NODES  # characters: a document this short cannot hold MAX_NODES values
_LIST_ADAPTERS: dict[str, pydantic.TypeAdapter[Any]] = {}


def _parse_simple_manifests(text: str, file: str, root: Path) -> list[Manifest] | None:
    """The fastest path: the Rust reader, then one pydantic validation per kind for the whole file.

    None unless the file is simple YAML (see `_NOT_SIMPLE`) holding only valid manifests without `status`;
    then the next path reads it, so a file gives the same manifests and findings whichever path reads it.
    """
    if yaml_rs is None or not _simple(text):
        return None
    starts = _document_starts(text)
    if starts is None:
        return None
    try:
        value = yaml_rs.loads(text, parse_datetime=False)
    except Exception:  # noqa: BLE001 - any refusal: the event readers find and word the problem
        return None
    values = value if len(starts) > 1 else [value]
    if len(starts) > 1 and (not isinstance(value, list) or len(value) != len(starts)):
        return None
    by_kind: dict[str, list[int]] = defaultdict(list)
    kept: list[tuple[dict[str, Any], int | None]] = []
    for document, start in zip(values, starts):
        if document is None and start is None:
            continue  # an empty document, as the event readers skip it
        if not isinstance(document, dict) or start is None or "status" in document:
            return None
        name = document.get("kind")
        kind = KINDS.get(name) if isinstance(name, str) and document.get("apiVersion") == API_VERSION else None
        if kind is None:
            return None
        by_kind[kind.name].append(len(kept))
        kept.append((document, start))
    documents: list[Any] = [None] * len(kept)
    for name, indexes in by_kind.items():
        adapter = _LIST_ADAPTERS.get(name)
        if adapter is None:
            adapter = _LIST_ADAPTERS[name] = pydantic.TypeAdapter(cast(Any, list)[KINDS[name].document])
        try:
            models = adapter.validate_json(orjson.dumps([kept[i][0] for i in indexes]), strict=True)
        except (orjson.JSONEncodeError, pydantic.ValidationError):
            return None
        for i, dumped in zip(indexes, adapter.dump_python(models, by_alias=True, mode="json", exclude_unset=True)):
            documents[i] = dumped
    located = []
    line, counted = 1, 0
    for (_, start), document in zip(kept, documents):
        assert start is not None
        line += text.count("\n", counted, start)
        counted = start
        located.append((document, line, start - text.rfind("\n", 0, start)))
    return _validated(located, text, file, root)


def _validated(
    documents: Iterable[Sequence[Any]], text: str | None, file: str, root: Path
) -> list[Manifest]:
    """Manifests for documents already validated (by the fast path, the child process or the cache), as
    (document, line, col) of each root; their field positions are read from `text` (or the file) on demand."""
    lazy = _FilePositions(text, file)
    manifests = []
    for index, (document, line, col) in enumerate(documents):
        origin = Origin(file, line, col)
        manifest = Manifest(ResourceKey.of(document), KINDS[document["kind"]], document, origin, root)
        manifest.locate = functools.partial(lazy.document, index)
        manifests.append(manifest)
    return manifests


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


def _document_starts(text: str) -> list[int | None] | None:
    """Per document, the offset of its first data character (None for an empty document), as the event
    readers split the file; None when a '---' line holds data or a document is too long for this path."""
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
    starts: list[int | None] = []
    for begin, end in spans:
        if end - begin > _MAX_SIMPLE_DOCUMENT:
            return None
        found = _CONTENT.search(text, begin, end)
        starts.append(found.start(1) if found else None)
    if len(starts) == 1 and starts[0] is None:
        return []  # nothing but comments and blank lines
    return starts


class _FilePositions:
    """Every document's field positions in one file, read by the full reader on first request."""

    def __init__(self, text: str | None, file: str) -> None:
        self.text = text  # None: read the file when asked (it was read by another process)
        self.file = file
        self.documents: list[dict[FieldPath, Origin]] | None = None

    def document(self, index: int) -> dict[FieldPath, Origin]:
        if self.documents is None:
            text = self.text if self.text is not None else _read_text(Path(self.file))[0]
            self.documents = [positions for _, positions in _values(text or "", self.file, [])]
            self.text = None
        # The readers agree on the documents of any file the fast paths accept (a property test); a
        # document the full reader does not see would only lose its field positions, not its manifest.
        return self.documents[index] if index < len(self.documents) else {}


def _without_duplicates(manifests: list[Manifest], findings: list[Finding]) -> list[Manifest]:
    """The same (kind, organization, name) twice is an error naming both places; the first one stays."""
    first: dict[ResourceKey, Manifest] = {}
    for m in manifests:
        if m.key in first:
            findings.append(
                m.finding(
                    ("metadata", "name"),
                    f"{m.key} is declared twice (first at {first[m.key].origin}); names are unique per kind "
                    "and organization: rename or remove one of them",
                )
            )
        else:
            first[m.key] = m
    return list(first.values())


# --- the stack and the policies (tenancy.yaml) --------------------------------------------------------


def _read_config(roots: list[Path], findings: list[Finding]) -> tuple[str | None, list[Path]]:
    """The stack named by the roots' tenancy.yaml files (they must agree when several name one), and the
    policy paths they list."""
    stack: str | None = None
    where = ""
    policies: list[Path] = []
    for root in roots:
        config = next((root / n for n in CONFIG_NAMES if (root / n).is_file()), None)
        document = _config_document(config, findings) if config else None
        if config is None or document is None:
            continue
        policies.extend(_config_policies(config, *document, findings))
        found = _config_stack(*document, findings)
        if found is None:
            continue
        name, at = found
        if stack is not None and name != stack:
            findings.append(
                _finding(at, f"stack: '{name}' differs from stack '{stack}' in {where}; plan and apply one stack at "
                             "a time, or pass --stack", "stack")
            )
            continue
        stack, where = name, str(config)
    return stack, policies


def _config_document(config: Path, findings: list[Finding]) -> tuple[dict[str, Any], dict[FieldPath, Origin]] | None:
    """One tenancy.yaml as (mapping, positions), its unknown fields reported; None when it holds none."""
    text, problems = _read_text(config)
    findings.extend(problems)
    documents = list(_values(text, str(config), findings)) if text is not None else []
    if not documents:
        return None
    value, positions = documents[0]
    at = positions[()]
    if len(documents) > 1:
        findings.append(_finding(at, "tenancy.yaml must hold a single document"))
    if not isinstance(value, dict):
        findings.append(_finding(at, "tenancy.yaml must be a mapping such as `stack: production`"))
        return None
    for key in value:
        if key not in CONFIG_FIELDS:
            message = f"unknown field '{key}' in tenancy.yaml; allowed: {', '.join(CONFIG_FIELDS)}"
            findings.append(_finding(positions[(key,)], message, key))
    return value, positions


def _config_stack(
    value: dict[str, Any], positions: dict[FieldPath, Origin], findings: list[Finding]
) -> tuple[str, Origin] | None:
    """The `stack:` of one tenancy.yaml and where it is written, or None (no stack, or an error found)."""
    stack = value.get("stack")
    if stack is None:
        return None
    where = positions[("stack",)]
    if not isinstance(stack, str) or not _SLUG.match(stack):
        words = _PATTERN_WORDS[SLUG_PATTERN]
        findings.append(_finding(where, f"stack: {_show(stack)} is not valid: expected {words}", "stack"))
        return None
    return stack, where


def _config_policies(
    config: Path, value: dict[str, Any], positions: dict[FieldPath, Origin], findings: list[Finding]
) -> list[Path]:
    """The `policy:` paths of one tenancy.yaml (a list, or one path), relative to its directory."""
    listed = value.get("policy")
    if listed is None:
        return []
    if isinstance(listed, str):
        entries: list[tuple[FieldPath, Any]] = [(("policy",), listed)]
    elif isinstance(listed, list):
        entries = [(("policy", i), entry) for i, entry in enumerate(listed)]
    else:
        message = "policy: expected a list of .rego files or directories, such as `policy: [policies/]`"
        findings.append(_finding(positions[("policy",)], message, "policy"))
        return []
    paths = []
    for where, entry in entries:
        at = positions.get(where, positions[("policy",)])
        if not isinstance(entry, str) or not entry:
            findings.append(_finding(at, f"policy: {_show(entry)} is not a path to a .rego file or directory", "policy"))
        elif not (config.parent / entry).exists():
            findings.append(_finding(at, f"policy: '{entry}' does not exist (relative to {config.parent})", "policy"))
        else:
            paths.append(config.parent / entry)
    return paths


def _finding(at: Origin, message: str, field: str = "", severity: Severity = Severity.ERROR) -> Finding:
    return Finding(at.file, at.line, at.col, severity, message, field)


# --- YAML: events → nodes ---------------------------------------------------------------------------


class _Refused(Exception):
    """A YAML problem at a position; internal: always turned into a Finding in this module."""

    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


@dataclass(eq=False)
class _Node:
    kind: str  # "scalar" | "seq" | "map"
    tag: str | None
    value: Any  # str for scalars; list[_Node] for seq; flat [key, value, key, value, ...] for map
    line: int  # 1-based
    col: int
    plain: bool = False  # an untagged plain scalar: its type comes from the core schema
    anchor: str | None = None


class _Composer:
    """One document's node graph, built from parser events; anchors are registered when complete, so an
    alias can never point into its own ancestors (no cycles)."""

    def __init__(self) -> None:
        self.stack: list[_Node] = []
        self.anchors: dict[str, _Node] = {}
        self.root: _Node | None = None
        self.aliased = False  # whether an alias repeats a node (the document may expand past its text)

    def attach(self, node: _Node) -> None:
        if self.stack:
            self.stack[-1].value.append(node)
        else:
            self.root = node

    def remember(self, anchor: str | None, node: _Node) -> None:
        if anchor is not None:
            self.anchors[anchor] = node

    def scalar(self, event: yaml.ScalarEvent, line: int, col: int) -> None:
        node = _Node("scalar", event.tag, event.value, line, col, plain=event.tag is None and bool(event.implicit[0]))
        self.remember(event.anchor, node)
        self.attach(node)

    def start(self, event: yaml.CollectionStartEvent, line: int, col: int) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise _Refused(f"the YAML nests deeper than {MAX_DEPTH} levels", line, col)
        kind = "seq" if isinstance(event, yaml.SequenceStartEvent) else "map"
        self.stack.append(_Node(kind, event.tag, [], line, col, anchor=event.anchor))

    def end(self) -> None:
        node = self.stack.pop()
        self.remember(node.anchor, node)
        self.attach(node)

    def alias(self, event: yaml.AliasEvent, line: int, col: int) -> None:
        target = self.anchors.get(event.anchor or "")
        if target is None:
            raise _Refused(
                f"alias *{event.anchor} does not refer to an anchor &{event.anchor} defined earlier in this document",
                line, col,
            )
        self.aliased = True
        self.attach(target)


def _documents(text: str) -> Iterator[tuple[_Node | None, bool]]:
    """Each document's root node (None when empty) and whether it uses aliases; raises `_Refused` or
    yaml.YAMLError at the first problem."""
    composer = _Composer()
    for event in yaml.parse(text, Loader=_EVENT_LOADER):
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


_NOT_YET = object()


def _plain_values(text: str) -> list[tuple[Any, int, int]] | None:
    """Each non-empty document's value and root position, built straight from the parser's events, or
    None when the text needs `_documents` + `_Builder` (an anchor, alias, tag or merge key, a duplicate or
    non-text key, a limit reached, a syntax error): the same values for every text it accepts."""
    documents: list[tuple[Any, int, int]] = []
    stack: list[Any] = []  # the open lists and dicts
    keys: list[Any] = []  # per open dict: the key waiting for its value (_NOT_YET when a key comes next)
    root: Any = _NOT_YET
    line = col = count = 0
    events: Iterator[Any] = yaml.parse(text, Loader=_EVENT_LOADER)  # dispatched on exact types below
    try:
        for event in events:
            cls = type(event)
            if cls is yaml.ScalarEvent:
                if event.anchor is not None or event.tag is not None:
                    return None
                plain = bool(event.implicit[0])
                if stack and type(stack[-1]) is dict and keys[-1] is _NOT_YET:
                    name = event.value
                    if (plain and name == _MERGE) or name in stack[-1]:
                        return None
                    keys[-1] = name
                    continue
                value: Any = _core_value(event.value) if plain else event.value
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


# --- YAML: nodes → plain values with positions --------------------------------------------------------

_CORE = "tag:yaml.org,2002:"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")
_SCALAR_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null"))
_COLLECTION_TAGS = {"seq": _CORE + "seq", "map": _CORE + "map"}
_MERGE = "<<"
_SPECIAL_STARTS = frozenset("~nNtTfF0123456789+-.")  # the first characters of _NULLS, _TRUE, _FALSE and numbers


def _core_value(text: str) -> Any:
    """A plain scalar under the YAML 1.2 core schema (what editors use): yes/no/on/off stay strings."""
    if text and text[0] not in _SPECIAL_STARTS:  # most values: no null, boolean or number starts this way
        return text
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    try:
        if _INT.fullmatch(text):
            return int(text, 10)
        if _OCT.fullmatch(text):
            return int(text[2:], 8)
        if _HEX.fullmatch(text):
            return int(text[2:], 16)
    except ValueError:  # more digits than Python converts: not a number anyone means
        return text
    if _FLOAT.fullmatch(text):
        return _number(float(text))
    if _INF.fullmatch(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.fullmatch(text):
        return float("nan")
    return text


def _number(value: float) -> int | float:
    """JSON's data model: 5.0 is the integer 5 (as JSON Schema and editors see it), so maxAddresses: 5.0 is fine."""
    return int(value) if value.is_integer() else value


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag


class _Builder:
    """Expands one document's nodes into JSON-like values, recording each value's position by path."""

    def __init__(self, file: str, findings: list[Finding], aliased: bool = False) -> None:
        self.file = file
        self.findings = findings
        self.through = " (through aliases)" if aliased else ""
        self.positions: dict[FieldPath, Origin] = {}
        self.count = 0

    def error(self, node: _Node, message: str) -> None:
        self.findings.append(Finding(self.file, node.line, node.col, Severity.ERROR, message))

    def build(self, node: _Node, path: FieldPath, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Refused(
                f"this document expands to more than {MAX_NODES:,} values{self.through}; refusing to read it: "
                "split it into several documents" + (" or repeat fewer aliases" if self.through else ""),
                node.line, node.col,
            )
        if depth > MAX_DEPTH:
            raise _Refused(f"this document nests deeper than {MAX_DEPTH} levels{self.through}", node.line, node.col)
        if node.kind == "scalar":
            return self.scalar(node)
        if node.tag not in (None, "!", _COLLECTION_TAGS[node.kind]):
            self.error(node, f"unsupported YAML tag {_short_tag(node.tag or '')}: manifests hold plain values only "
                             "(text, numbers, true/false, null, lists and mappings)")
        if node.kind == "seq":
            return self.sequence(node, path, depth)
        return self.mapping(node, path, depth)

    def scalar(self, node: _Node) -> Any:
        text = node.value
        if node.plain:
            return _core_value(text)
        if node.tag in (None, "!", _CORE + "str"):
            return text
        if node.tag in _SCALAR_TAGS:
            value = _core_value(text)
            name = node.tag[len(_CORE):]
            fits = {"int": type(value) is int, "float": type(value) in (int, float), "bool": type(value) is bool,
                    "null": value is None}[name]
            if fits:
                return _number(float(value)) if name == "float" else value
            self.error(node, f"{_show(text)} is not a valid {_short_tag(node.tag)} value")
            return text
        self.error(node, f"unsupported YAML tag {_short_tag(node.tag or '')}: manifests hold plain values only "
                         "(text, numbers, true/false, null, lists and mappings)")
        return text

    def sequence(self, node: _Node, path: FieldPath, depth: int) -> list[Any]:
        out = []
        for i, child in enumerate(node.value):
            self.positions[path + (i,)] = Origin(self.file, child.line, child.col)
            out.append(self.build(child, path + (i,), depth + 1))
        return out

    def mapping(self, node: _Node, path: FieldPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        pairs = list(zip(node.value[0::2], node.value[1::2], strict=True))
        # Merge keys first, so that the mapping's own keys override what `<<: *defaults` brings in.
        for key, value in pairs:
            if key.kind == "scalar" and key.plain and key.value == _MERGE:
                self.merge(out, value, path, depth)
        first: dict[str, _Node] = {}
        for key, value in pairs:
            if key.kind != "scalar":
                self.error(key, "a mapping key must be plain text, not a list or a mapping")
                continue
            if key.plain and key.value == _MERGE:
                continue
            name = key.value
            if name in first:
                self.error(key, f"duplicate key '{name}' (first at line {first[name].line}); YAML would silently keep "
                                "only the last one: remove or rename one of them")
                continue
            first[name] = key
            self.positions[path + (name,)] = Origin(self.file, key.line, key.col)
            out[name] = self.build(value, path + (name,), depth + 1)
        return out

    def merge(self, out: dict[str, Any], value: _Node, path: FieldPath, depth: int) -> None:
        sources = value.value if value.kind == "seq" else [value]
        for source in sources:
            if source.kind != "map":
                self.error(source, "a merge key (<<) takes a mapping or a list of mappings, e.g. <<: *defaults")
                continue
            for name, item in self.mapping(source, path, depth).items():
                out.setdefault(name, item)


def _values(text: str, file: str, findings: list[Finding]) -> Iterator[tuple[Any, dict[FieldPath, Origin]]]:
    """Each non-empty document as (value, positions); YAML problems become findings and end the file."""
    try:
        for root, aliased in _documents(text):
            if root is None:
                continue
            builder = _Builder(file, findings, aliased)
            before = len(findings)
            try:
                value = builder.build(root, ())
            except _Refused as e:
                findings.append(Finding(file, e.line, e.col, Severity.ERROR, e.message))
                continue
            if value is None or len(findings) > before:  # an empty document, or one with YAML errors
                continue
            builder.positions[()] = Origin(file, root.line, root.col)
            yield value, builder.positions
    except _Refused as e:
        findings.append(Finding(file, e.line, e.col, Severity.ERROR, e.message))
    except yaml.MarkedYAMLError as e:
        findings.append(_syntax_finding(e, text, file))
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        col = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        message = f"the file contains a control character (#x{_code(e.character):04x}) that YAML does not allow"
        findings.append(Finding(file, line, col, Severity.ERROR, message))
    except yaml.YAMLError as e:  # unmarked: rare (e.g. a reader error without position)
        findings.append(Finding(file, 1, 1, Severity.ERROR, f"invalid YAML: {e}"))


def _code(character: int | str) -> int:
    return character if isinstance(character, int) else ord(character[:1] or "\0")


# --- YAML syntax errors, reworded ---------------------------------------------------------------------


def _syntax_finding(e: yaml.MarkedYAMLError, text: str, file: str) -> Finding:
    mark = e.problem_mark or e.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message, at_context = _syntax_message(e, text)
    if at_context and e.context_mark is not None:
        line, col = e.context_mark.line + 1, e.context_mark.column + 1
    return Finding(file, line, col, Severity.ERROR, message)


def _char_at(text: str, mark: Any) -> str:
    lines = text.splitlines()
    if mark is None or mark.line >= len(lines) or mark.column >= len(lines[mark.line]):
        return ""
    return str(lines[mark.line][mark.column])


def _syntax_message(e: yaml.MarkedYAMLError, text: str) -> tuple[str, bool]:
    """A message a person can act on, and whether it is best located at the context mark."""
    problem = (e.problem or "").strip()
    context = (e.context or "").strip()
    started = f" (opened at line {e.context_mark.line + 1})" if e.context_mark else ""
    if "nesting depth" in problem:  # libyaml's own depth limit (some builds have one): our limit, our words
        return f"the YAML nests deeper than {MAX_DEPTH} levels", False
    if "tab" in problem or _char_at(text, e.problem_mark) == "\t":
        return "a tab character cannot indent YAML; indent with spaces", False
    if "mapping values are not allowed" in problem:
        return ("unexpected ':' here: check this line's indentation, or quote a value that contains ': '"), False
    if "could not find expected ':'" in problem:
        return ("expected 'key: value' on this line: a ':' is missing, or the line continues the previous one "
                "with the wrong indentation"), True
    if "block mapping" in context or "block collection" in context or "expected <block end>" in problem:
        return "bad indentation: this line does not line up with the lines above it; indent it like its siblings", False
    if "block sequence" in context:
        return f"bad indentation: this line does not line up with the list{started}; list items start with '- '", False
    if "quoted scalar" in context:
        return f"a quoted string{started} is never closed", False
    if "flow sequence" in context or "flow mapping" in context:
        bracket = "[" if "sequence" in context else "{"
        return f"'{bracket}'{started} is not closed, or a ',' is missing between its items", False
    if "undefined alias" in problem:
        return "an alias (*name) refers to an anchor (&name) that is not defined earlier in this document", False
    if "duplicate anchor" in context or "duplicate anchor" in problem:
        return "the same anchor (&name) is defined twice in this document; rename one", False
    if "control characters" in problem or "special characters" in problem:
        return "the file contains a control character that YAML does not allow", False
    detail = f"{context}: {problem}" if context else problem
    return f"invalid YAML: {detail}", False


# --- documents ----------------------------------------------------------------------------------------


def _manifest(
    value: Any, positions: dict[FieldPath, Origin], file: str, root: Path, findings: list[Finding]
) -> Manifest | None:
    """A validated Manifest, or None with the reasons appended to `findings`."""
    origin = positions[()]

    def error(path: FieldPath, message: str) -> None:
        at = _nearest(positions, path, origin)
        findings.append(Finding(file, at.line, at.col, Severity.ERROR, message, dotted_path(path)))

    if not isinstance(value, dict):
        error((), "a document must be a mapping with apiVersion, kind, metadata and spec; "
                  f"this one is {_type_name(value)}")
        return None
    kind = _kind_of(value, error)
    if kind is None:
        return None
    try:
        model = kind.document.model_validate_json(json.dumps(value), strict=True)
    except pydantic.ValidationError as e:
        for path, message in _messages(kind, value, e.errors()):
            error(path, message)
        return None
    if value.get("status") is not None:
        at = _nearest(positions, ("status",), origin)
        findings.append(Finding(file, at.line, at.col, Severity.WARNING,
                                "status: is reported by the backend and ignored in manifests; remove it", "status"))
    document = model.model_dump(by_alias=True, mode="json", exclude_unset=True)
    return Manifest(ResourceKey.of(document), kind, document, origin, root, positions)


def _nearest(positions: dict[FieldPath, Origin], path: FieldPath, default: Origin) -> Origin:
    while path:
        if path in positions:
            return positions[path]
        path = path[:-1]
    return default


def _kind_of(value: dict[str, Any], error: Any) -> Kind | None:
    """The document's kind, after apiVersion and kind are checked (the rest means nothing without them)."""
    kinds = ", ".join(KINDS)
    api_version = value.get("apiVersion")
    ok = True
    if api_version is None:
        error((), f"apiVersion is missing; add apiVersion: {API_VERSION}")
        ok = False
    elif api_version != API_VERSION:
        error(("apiVersion",), f"apiVersion: unknown apiVersion {_show(api_version)}; use {API_VERSION}")
        ok = False
    name = value.get("kind")
    if name is None:
        error((), f"kind is missing; add kind: one of {kinds}")
        return None
    if not isinstance(name, str) or name not in KINDS:
        hint = _closest_kind(name)
        suggestion = f" (did you mean {hint}?)" if hint else ""
        error(("kind",), f"kind: unknown kind {_show(name)}{suggestion}; use one of: {kinds}")
        return None
    return KINDS[name] if ok else None


def _closest_kind(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    folded = {re.sub(r"[^a-z]", "", k.lower()): k for k in KINDS}
    squeezed = re.sub(r"[^a-z]", "", name.lower())
    if squeezed in folded:
        return folded[squeezed]
    plural = {k.plural.replace("-", ""): k.name for k in KINDS.values()}
    if squeezed in plural:
        return plural[squeezed]
    close = difflib.get_close_matches(squeezed, list(folded), n=1, cutoff=0.6)
    return folded[close[0]] if close else None


# --- pydantic errors → messages ------------------------------------------------------------------------

_PATTERN_WORDS = {
    SLUG_PATTERN: "1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit "
                  "(e.g. acme-sales)",
    DNS_PATTERN: "a lowercase DNS name such as mail.example.com",
    EMAIL_PATTERN: "an email address such as alice@example.com",
    HTTPS_URL_PATTERN: "an https:// URL",
    LABEL_KEY_PATTERN: "a label key: up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter "
                       "or digit, optionally after a DNS prefix and '/' (e.g. team or example.com/team)",
    r"^[A-Z]{2}$": "a two-letter ISO 3166-1 country code in capitals, e.g. DE",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "an environment variable name: letters, digits and '_', not starting with a digit",
}

_EXPECTED_TYPE = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
    "list_type": "a list",
    "none_required": "null",
}


def _messages(kind: Kind, value: dict[str, Any], errors: list[Any]) -> list[tuple[FieldPath, str]]:
    """Every pydantic error as (path, message), union alternatives folded into one message each."""
    plain: list[tuple[FieldPath, Any]] = []
    unions: dict[FieldPath, dict[str, list[tuple[FieldPath, Any]]]] = defaultdict(lambda: defaultdict(list))
    for err in errors:
        path, tag = _trace(kind.document, tuple(err["loc"]))
        if tag is None:
            plain.append((path, err))
        else:
            unions[path[: tag[0]]][tag[1]].append((path, err))
    for prefix, members in unions.items():
        ranked = sorted(members.values(), key=len)
        at = _value_at(value, prefix)
        if isinstance(at, dict) and (len(ranked) == 1 or len(ranked[0]) < len(ranked[1])):
            plain.extend(ranked[0])  # one alternative is clearly what was meant: report its errors
        else:
            plain.append((prefix, {"type": "_union", "members": list(members)}))
    out: list[tuple[FieldPath, str]] = []
    for path, err in plain:
        item = (path, _message(kind, value, path, err))
        if item not in out:
            out.append(item)
    return out


def _trace(model: Any, loc: tuple[Any, ...]) -> tuple[FieldPath, tuple[int, str] | None]:
    """The value path of a pydantic `loc` (union member names and `[key]` markers removed), and where a
    union member was chosen: (index into the path, member name)."""
    path: list[str | int] = []
    tag: tuple[int, str] | None = None
    ann: Any = model
    for step in loc:
        if step == "[key]":
            continue
        member = _union_member(ann, step)
        if member is not None:
            tag = (len(path), str(step))
            ann = member
            continue
        path.append(step)
        ann = _child(ann, step)
    return tuple(path), tag


def _unwrap(ann: Any) -> list[Any]:
    """The alternatives of an annotation: Annotated stripped, Optional/Union spread, None left out."""
    while get_origin(ann) is Annotated:
        ann = get_args(ann)[0]
    if get_origin(ann) in (Union, UnionType):
        return [a for arg in get_args(ann) for a in _unwrap(arg) if a is not NoneType]
    return [ann]


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, pydantic.BaseModel)


def _union_member(ann: Any, step: Any) -> Any:
    options = _unwrap(ann)
    if len(options) < 2 or not isinstance(step, str):
        return None
    return next((o for o in options if _is_model(o) and o.__name__ == step), None)


def _fields(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """camelCase field name → annotation."""
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


def _child(ann: Any, step: Any) -> Any:
    for option in _unwrap(ann):
        if _is_model(option) and isinstance(step, str) and step in _fields(option):
            return _fields(option)[step]
        origin = get_origin(option)
        if origin is list and isinstance(step, int):
            return get_args(option)[0]
        if origin is dict and isinstance(step, str):
            return get_args(option)[1]
    return None


def _model_at(model: Any, path: FieldPath) -> type[pydantic.BaseModel] | None:
    ann = model
    for step in path:
        ann = _child(ann, step)
    models = [o for o in _unwrap(ann) if _is_model(o)]
    return models[0] if len(models) == 1 else None


def _value_at(value: Any, path: FieldPath) -> Any:
    for step in path:
        if isinstance(value, dict) and isinstance(step, str):
            value = value.get(step)
        elif isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
            value = value[step]
        else:
            return None
    return value


def _message(kind: Kind, value: dict[str, Any], path: FieldPath, err: Any) -> str:
    """One error, said for a person: what is wrong and what would be right. Never echoes a secret."""
    is_key = bool(err.get("loc")) and err["loc"][-1] == "[key]"
    dotted = dotted_path(path[:-1] if is_key else path)
    secret = len(path) >= 2 and path[0] == "spec" and path[1] in kind.sensitive
    given = "the value" if secret else _show(err.get("input"))
    kind_of_error = err["type"]
    ctx = err.get("ctx") or {}
    prefix = f"{dotted}: " if dotted else ""
    if kind_of_error == "_union":
        return prefix + _union_text(kind, path, _value_at(value, path), secret)
    if kind_of_error == "missing":
        parent = dotted_path(path[:-1])
        return f"{parent + ': ' if parent else ''}required field '{path[-1]}' is missing; add it"
    if kind_of_error == "extra_forbidden":
        return prefix + _unknown_field_text(kind, path)
    if kind_of_error in ("enum", "literal_error"):
        allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = _did_you_mean(err.get("input"), allowed)
        return f"{prefix}{given} is not allowed{hint}; use one of: {', '.join(allowed)}"
    if kind_of_error == "string_pattern_mismatch":
        words = _PATTERN_WORDS.get(str(ctx.get("pattern")), f"text matching {ctx.get('pattern')}")
        if is_key:
            return f"{prefix}key {given} is not valid: expected {words}"
        return f"{prefix}{given} is not valid: expected {words}"
    if kind_of_error == "string_too_short":
        least = ctx.get("min_length", 1)
        return prefix + ("must not be empty" if least == 1 else f"must be at least {least} characters long")
    if kind_of_error == "string_too_long":
        return f"{prefix}is too long: at most {ctx.get('max_length')} characters"
    if kind_of_error in ("greater_than_equal", "greater_than"):
        return f"{prefix}must be at least {ctx.get('ge', ctx.get('gt'))} (got {given})"
    if kind_of_error in ("less_than_equal", "less_than"):
        return f"{prefix}must be at most {ctx.get('le', ctx.get('lt'))} (got {given})"
    if kind_of_error == "value_error":  # a validator's own words, without pydantic's "Value error, "
        return f"{prefix}{ctx.get('error', err.get('msg', 'invalid value'))}"
    if kind_of_error in _EXPECTED_TYPE:
        got = "a value" if secret else _type_name(err.get("input"))
        return f"{prefix}expected {_EXPECTED_TYPE[kind_of_error]}, got {got}"
    return f"{prefix}{err.get('msg', 'invalid value')}"


def _unknown_field_text(kind: Kind, path: FieldPath) -> str:
    model = _model_at(kind.document, path[:-1])
    allowed = [n for n in _fields(model) if n not in SERVER_METADATA] if model else []
    name = str(path[-1])
    where = dotted_path(path[:-1]) or "the document"
    hint = _did_you_mean(name, allowed)
    listing = f"; allowed in {where}: {', '.join(allowed)}" if allowed else ""
    return f"unknown field '{name}'{hint}{listing}"


def _union_text(kind: Kind, path: FieldPath, given: Any, secret: bool) -> str:
    ann = kind.document
    for step in path:
        ann = _child(ann, step)
    shapes = []
    for option in _unwrap(ann):
        if _is_model(option):
            required = [(f.alias or n) for n, f in option.model_fields.items() if f.is_required()]
            shapes.append("{" + ", ".join(f"{r}: ..." for r in required) + "}")
    text = f"expected one of {' or '.join(shapes)}" if shapes else "invalid value"
    if isinstance(given, dict) and len(given) > 1:
        text = f"use exactly one of {' or '.join(shapes)}, not several fields at once"
    if secret and isinstance(given, str):
        text += ("; a clear-text secret does not belong in a manifest: put it in an environment variable or a file "
                 "and point to it")
    return text


def _did_you_mean(given: Any, allowed: list[str]) -> str:
    if not isinstance(given, str):
        return ""
    close = difflib.get_close_matches(given, allowed, n=1, cutoff=0.6)
    if not close:
        lowered = {a.lower(): a for a in allowed}
        close = [lowered[given.lower()]] if given.lower() in lowered else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def _show(value: Any) -> str:
    """A short rendering of a (non-secret) value for a message."""
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return "'" + shown.replace("\n", "\\n") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value) if len(str(value)) <= 30 else "a very long number"
    return _type_name(value)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "null (nothing)"
    return type(value).__name__


__all__ = [
    "CONFIG_NAMES",
    "FOREIGN_FILES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "FieldPath",
    "Manifest",
    "ManifestSet",
    "Origin",
    "collect",
    "discover",
    "dotted_path",
    "load",
    "load_text",
]
