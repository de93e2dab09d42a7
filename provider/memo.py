"""The plan memo: a plan with no change, remembered with everything it was computed from, so that planning
the same manifests against the same backend again answers from it without reading or judging the fleet.

A plan is a function of the manifest files, tenancy.yaml, the code that plans, the options (backend and
token scope, paths, stack, selection, `--allow-secret-outside`), the secrets' sources, the backend's prices
and its state at one revision. The memo is one file per view (`Header`) in the cache directory; it is
trusted only when every one of those is recognised unchanged:

- every manifest by the SHA-256 of the text the plan read from it, and by its stat (size, mtime, ctime,
  inode, device) as git's index does: a manifest whose stat is the one recorded is not read; one whose
  stat moved (touched, checked out again), or that was changed within a second of the plan (a "racy"
  file: a change within the same clock tick could keep its stat), is read and hashed again, and the hash
  decides (its new stat is kept when the memo is next written);
- every config file (tenancy.yaml) by its stat (a racy one: nothing is remembered);
- the code by a SHA-256 of every module of `provider` and `tenancy_kinds` and pydantic's version;
- the secrets by an scrypt digest of what their sources hold now (salted per memo: the memo holds no
  secret, and no fast hash of one);
- the prices by their SHA-256; the live state by one `GET /v1/export?since=REVISION` that answers nothing
  changed in the same database.

Plans with no operation are remembered (the common nightly and pull-request case), and so are whole plans
of up to MAX_REMEMBERED_OPERATIONS changes that send no secret, with each change's documents: `apply`
right after `plan` then works the plan's operations out again from those alone (a pure function of each
pair) instead of reading and judging the fleet; a plan that sends a secret is computed in full, so that
the secret is read and judged where it lies. `apply` remembers too: after an apply that applied
everything, the changes the backend reports since the plan's revision must be the planned ones (or
statuses it counted again) and re-plan to nothing (`after_apply`). Policies are not part of the memo:
they are judged again on the recalled plan.
A memo that is unreadable, of another format or key never answers; `TENANCY_NO_CACHE=1` turns it off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import decimal
import functools
import gc
import hashlib
import os
import secrets as random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pydantic

import provider
import tenancy_kinds
from provider.costs import CostChange, Prices
from provider.errors import BackendError, ConfigError
from provider.live import LiveDelta, complete_cache
from provider.manifests import CONFIG_NAMES, discover
from provider.manifests.cache import RACY_NS, entry_for, keyed_entry
from provider.manifests.text import read_text
from provider.ordering import build
from provider.diff import deletion_diffs, diff
from provider.operations import Action, Delete, Operation
from provider.plan import Plan
from provider.secrets import SecretInput, read_input
from provider.targeting import Selection
from tenancy_kinds import KINDS, ResourceKey

MEMO_FORMAT = "tenancy-plan-memo/3"
# A plan with changes is remembered with the documents of each one (about 1.5 KB a change): up to this many.
MAX_REMEMBERED_OPERATIONS = 50_000
# scrypt's cost for the secrets' digest: ~50 ms once per plan, and as much per guess to anyone who reads it.
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024}


@dataclass(frozen=True)
class Header:
    """The view a memo answers for: its file name; the same options always find the same file."""

    backend: str  # the client's cache identity: the backend and a SHA-256 of the token
    paths: tuple[str, ...]
    stack_option: str | None
    selection: Selection | None
    allow_outside: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "paths": list(self.paths),
            "stack_option": self.stack_option,
            "stack_env": os.environ.get("TENANCY_STACK"),
            "selection": None if self.selection is None else self.selection.as_json(),
            "allow_outside": self.allow_outside,
        }

    def entry(self) -> Path | None:
        return keyed_entry("plans", self.as_json())


Stat = tuple[int, int, int, int, int]  # size, mtime, ctime (ns), inode, device
# A manifest as a memo knows it: its path, its stat (None: not to be trusted, the text decides) and the key
# of its text as read (`manifests.cache.entry_for`).
Known = tuple[str, Stat | None, str]


@dataclass(frozen=True)
class Fingerprint:
    """The files' side of a memo's key, taken before anything is read: every manifest's stat (None when it
    was racy then, or vanished) and every config file's."""

    header: Header
    key: str  # SHA-256 of the memo's format, the code, the header, the manifests' paths, the configs' stats
    manifests: tuple[tuple[str, Stat | None], ...]


@dataclass(frozen=True)
class Remembered:
    """What a memo recalls: the plan's own fields, its operations worked out again from their documents,
    and what it was computed from (to remember the plan that follows its apply)."""

    stack: str | None
    warnings: tuple[str, ...]
    notes: tuple[str, ...]
    not_planned: int
    policies: tuple[str, ...]  # tenancy.yaml's `policy:` paths, as the manifests named them
    revision: int
    operations: tuple[Operation, ...]  # in the order the plan built its graph from
    costs: tuple[CostChange, ...]
    organization_labels: dict[str, dict[str, str]]
    manifest_warnings: tuple[str, ...]  # the manifests' own, as Planned keeps them
    inputs: tuple[SecretInput, ...]
    prices: str  # their digest
    database: str
    files: tuple[Known, ...]  # every manifest, recognised by its text where its stat had moved


def fingerprint(header: Header, started_ns: int) -> Fingerprint | None:
    """The files as they are now, by their stats; a manifest changed within a second of `started_ns` is
    racy (its stat None). None when a file cannot be recognised so (unreadable, or a racy tenancy.yaml):
    then nothing is remembered, and nothing recalled."""
    if header.entry() is None:
        return None
    try:
        files, roots = discover(header.paths)
    except (ConfigError, OSError):
        return None
    digest = hashlib.sha256(MEMO_FORMAT.encode() + b"\0" + code_salt())
    digest.update(orjson.dumps(header.as_json(), option=orjson.OPT_SORT_KEYS))
    recent = started_ns - RACY_NS
    manifests: list[tuple[str, Stat | None]] = []
    for file, _ in files:
        path = os.fspath(file)  # absolute: the header's paths are
        digest.update(b"\0manifest\0" + path.encode("utf-8", "surrogateescape"))
        try:
            st = os.stat(path)
        except FileNotFoundError:
            manifests.append((path, None))  # vanished since it was found: its text cannot be known
            continue
        except OSError:
            return None
        racy = st.st_mtime_ns > recent or st.st_ctime_ns > recent
        manifests.append((path, None if racy else (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)))
    for path in [os.path.join(root, name) for root in roots for name in CONFIG_NAMES]:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            digest.update(b"\0absent\0" + path.encode("utf-8", "surrogateescape"))
            continue
        except OSError:
            return None
        if st.st_mtime_ns > recent or st.st_ctime_ns > recent:
            return None
        stat = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
        digest.update(b"\0%s\0%d %d %d %d %d" % (path.encode("utf-8", "surrogateescape"), *stat))
    return Fingerprint(header, digest.hexdigest(), tuple(manifests))


def files_read(print_: Fingerprint, keys: Mapping[str, str]) -> tuple[Known, ...] | None:
    """Every manifest with its stat and the key of its text as the plan read it, from the loader's `keys`
    (by the paths it read, which may name the same files by other paths); None when one was not read."""
    read = {os.path.abspath(path): key for path, key in keys.items()}
    real: dict[str, str] | None = None
    known: list[Known] = []
    for path, stat in print_.manifests:
        key = read.get(path)
        if key is None:  # named through a symbolic link: by the files' real paths
            real = real if real is not None else {os.path.realpath(p): k for p, k in keys.items()}
            key = real.get(os.path.realpath(path))
        if key is None:
            return None
        known.append((path, stat, key))
    return tuple(known)


def _recognised(print_: Fingerprint, files: Sequence[Any]) -> tuple[Known, ...] | None:
    """The remembered manifests, when each still holds the text it held: by its stat where that is the one
    recorded, else read and hashed; with the stats of now. None when one differs."""
    if len(files) != len(print_.manifests):
        return None
    known: list[Known] = []
    for (path, stat, key), (now_path, now) in zip(files, print_.manifests, strict=True):
        if path != now_path or not isinstance(key, str):
            return None
        if stat is None or now is None or tuple(stat) != now:
            text, _ = read_text(Path(path))
            entry = None if text is None else entry_for(text)
            if entry is None or entry.name != key:
                return None
        known.append((path, now, key))
    return tuple(known)


@functools.cache
def code_salt() -> bytes:
    """Every module of `provider` and `tenancy_kinds` (by path and bytes) and pydantic's version."""
    digest = hashlib.sha256(pydantic.VERSION.encode())
    for package in (Path(provider.__file__).parent, Path(tenancy_kinds.__file__).parent):
        for module in sorted(package.rglob("*.py")):
            digest.update(str(module.relative_to(package)).encode() + b"\0" + module.read_bytes())
    return digest.digest()


def prices_digest(prices: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(prices, option=orjson.OPT_SORT_KEYS)).hexdigest()


def secrets_digest(inputs: Sequence[SecretInput], salt: bytes, env: Mapping[str, str]) -> str:
    """An scrypt digest of what the secrets' sources hold now (values, absence, files' real paths)."""
    if not inputs:
        return "none"
    material = bytearray()
    for source in sorted(set(inputs)):
        held = read_input(source, env)
        for part in (source.kind.encode(), source.name.encode("utf-8", "surrogateescape"), held):
            material += len(part).to_bytes(8, "big") + part if part is not None else b"\xff" * 8
    return hashlib.scrypt(bytes(material), salt=salt, **SCRYPT).hex()


# --- recall ----------------------------------------------------------------------------------------


def recall(print_: Fingerprint, client: Any, prices: Mapping[str, Any], env: Mapping[str, str]) -> Remembered | None:
    """The remembered plan when nothing it was computed from changed; None otherwise (then plan in full)."""
    stored = _load(print_)
    if stored is None or not hasattr(client, "changes") or stored.remembered.prices != prices_digest(prices):
        return None
    if secrets_digest(stored.remembered.inputs, stored.salt, env) != stored.digest:
        return None
    revision = stored.remembered.revision
    try:
        delta: LiveDelta | None = client.changes(revision)
    except BackendError:
        return None  # 410 (the log moved on) or any refusal: the full plan says what is wrong
    if delta is None or delta.items or delta.deleted or delta.database != stored.remembered.database:
        return None
    if delta.revision != revision or delta.since != revision:
        return None
    return stored.remembered


def recalled_plan(remembered: Remembered, selection: Selection | None) -> Plan:
    """The remembered plan, whole again: its graph built anew from its operations (as the plan built it)."""
    graph = build(list(remembered.operations))
    return Plan(
        operations=tuple(graph.operations_in_order()),
        stack=remembered.stack,
        graph=graph,
        costs=remembered.costs,
        warnings=remembered.warnings,
        notes=remembered.notes,
        organization_labels=remembered.organization_labels,
        selection=selection,
        not_planned=remembered.not_planned,
        live_revision=remembered.revision,
    )


def recalled_planned(print_: Fingerprint, remembered: Remembered, prices: Mapping[str, Any]) -> Planned:
    """What the recalled plan was computed from, as the full plan would have kept it (`after_apply`)."""
    return Planned(
        print_, remembered.stack, remembered.policies, remembered.manifest_warnings, remembered.inputs,
        remembered.prices, Prices.from_api(prices), remembered.database, remembered.revision, remembered.files,
    )


@dataclass(frozen=True)
class _Stored:
    """A memo file, read and checked."""

    remembered: Remembered
    salt: bytes
    digest: str  # of the secrets' sources, salted


class _Untrusted(ValueError):
    """A memo whose operations do not work out again as it says they were planned."""


def _load(print_: Fingerprint) -> _Stored | None:
    """The memo of the view when it is ours and of this key; None when absent, unreadable or not ours."""
    entry = print_.header.entry()
    if entry is None:
        return None
    try:
        memo = orjson.loads(entry.read_bytes())
        if not isinstance(memo, dict) or memo.get("format") != MEMO_FORMAT or memo.get("key") != print_.key:
            return None
        files = _recognised(print_, memo["files"])
        if files is None:
            return None
        revision, database, prices = memo["revision"], memo["database"], memo["prices"]
        fields, held = memo["plan"], memo["secrets"]
        if not (isinstance(revision, int) and isinstance(database, str) and isinstance(prices, str)):
            return None
        texts = [fields["warnings"], fields["notes"], fields["policies"], memo["manifest_warnings"]]
        if not all(isinstance(t, list) and all(isinstance(x, str) for x in t) for t in texts):
            return None
        if not isinstance(fields["stack"], (str, type(None))) or not isinstance(held["digest"], str):
            return None
        inputs = tuple(SecretInput(str(kind), str(name)) for kind, name in held["inputs"])
        remembered = Remembered(
            fields["stack"], tuple(texts[0]), tuple(texts[1]), int(fields["not_planned"]), tuple(texts[2]), revision,
            operations=tuple(_operation(item, fields["stack"]) for item in fields["operations"]),
            costs=tuple(_cost(*item) for item in fields["costs"]),
            organization_labels=_labels(fields["organization_labels"]),
            manifest_warnings=tuple(texts[3]),
            inputs=inputs,
            prices=prices,
            database=database,
            files=files,
        )
        return _Stored(remembered, bytes.fromhex(held["salt"]), held["digest"])
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, decimal.InvalidOperation):
        return None


def _operation(item: Any, stack: str | None) -> Operation:
    """A remembered change, [action, declared document, live document], worked out again from its documents
    exactly as the plan worked it out."""
    action, desired, live = item
    if not (isinstance(desired, (dict, type(None))) and isinstance(live, (dict, type(None)))):
        raise _Untrusted("an operation's documents are not documents")
    if action == Action.DELETE.value:
        if desired is not None or live is None:
            raise _Untrusted("a deletion without its live document")
        return Delete(ResourceKey.of(live), None, live, deletion_diffs(live))
    if desired is None:
        raise _Untrusted("a change without its declared document")
    key = ResourceKey.of(desired)
    op = diff(KINDS[key.kind], desired, live, stack, key)
    if op is None or op.action.value != action or op.sends_secret:
        raise _Untrusted(f"{key} does not plan to the remembered {action}")
    return op


def _cost(organization: str, before: str, after: str, currency: str, balance: str | None) -> CostChange:
    if not all(isinstance(x, str) for x in (organization, before, after, currency)):
        raise _Untrusted("a cost that is not a cost")
    left = None if balance is None else Decimal(balance)
    return CostChange(organization, Decimal(before), Decimal(after), currency, left)


def _labels(value: Any) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict) or not all(
        isinstance(labels, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
        for labels in value.values()
    ):
        raise _Untrusted("organization labels that are not labels")
    return value


# --- remember --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """What a full plan was computed from, besides the manifests' stats: kept to remember it."""

    print_: Fingerprint
    stack: str | None
    policies: tuple[str, ...]
    warnings: tuple[str, ...]  # the manifests' own (the verdict's), as the plan shows them
    inputs: tuple[SecretInput, ...]
    prices: str  # their digest
    price_table: Prices
    database: str | None
    revision: int | None
    files: tuple[Known, ...] | None  # `files_read`: None when a manifest's text is not known


def rememberable(result: Plan) -> bool:
    """Whether a plan is remembered: one with no change; a whole plan of at most MAX_REMEMBERED_OPERATIONS
    changes none of which sends a secret."""
    if not result.operations:
        return True
    return (
        result.selection is None
        and len(result.operations) <= MAX_REMEMBERED_OPERATIONS
        and not any(op.sends_secret for op in result.operations)
    )


def remember(planned: Planned, result: Plan, env: Mapping[str, str]) -> None:
    """Keep a plan that `rememberable` admits; any other plan is not remembered (and an older memo of the
    view is removed: it no longer answers)."""
    entry = planned.print_.header.entry()
    if entry is None:
        return
    if not rememberable(result) or planned.revision is None or planned.database is None or planned.files is None:
        _forget(entry)
        return
    salt = random.token_bytes(16)
    memo = {
        "format": MEMO_FORMAT,
        "key": planned.print_.key,
        "files": planned.files,
        "header": planned.print_.header.as_json(),
        "written_ns": time.time_ns(),
        "revision": planned.revision,
        "database": planned.database,
        "prices": planned.prices,
        "manifest_warnings": list(planned.warnings),
        "secrets": {
            "inputs": [[s.kind, s.name] for s in sorted(set(planned.inputs))],
            "salt": salt.hex(),
            "digest": secrets_digest(planned.inputs, salt, env),
        },
        "plan": {
            "stack": result.stack,
            "warnings": list(result.warnings),
            "notes": list(result.notes),
            "not_planned": result.not_planned,
            "policies": list(planned.policies),
            # In the order the graph was built from (the apply order is worked out from it again).
            "operations": [[op.action.value, op.desired, op.live] for op in result.graph.operations]
            if result.operations
            else [],
            "costs": [
                [c.organization, str(c.before), str(c.after), c.currency, None if c.balance is None else str(c.balance)]
                for c in result.costs
            ],
            "organization_labels": result.organization_labels,
        },
    }
    try:
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
        temporary.write_bytes(orjson.dumps(memo))
        os.replace(temporary, entry)
    except (OSError, TypeError):
        _forget(entry)  # an older memo of the view no longer answers either
        return


def _forget(entry: Path) -> None:
    try:
        entry.unlink(missing_ok=True)
    except OSError:
        return


def after_apply(planned: Planned, applied: Plan, client: Any, env: Mapping[str, str]) -> None:
    """After an apply that applied every operation of `applied` (a whole plan, not a targeted one): remember
    the plan that follows, when every change the backend reports since the plan's revision is a planned one
    or leaves the document as it was then (a status the backend counts again: an organization's users,
    its balance), and every planned resource, as the backend holds it now, diffs to nothing against its
    manifest.

    That is the whole plan's answer: a resource no operation touched had none, and neither it nor its
    manifest moved (the fingerprint and the change log say so: a write gives it a resourceVersion above
    the revision; a status is never compared); a deletion left its tombstone."""
    entry = planned.print_.header.entry()
    if entry is None or planned.revision is None or not hasattr(client, "changes"):
        return
    with without_cyclic_gc():
        try:
            delta: LiveDelta | None = client.changes(planned.revision)
        except BackendError:
            return
        if delta is None or delta.database != planned.database:
            return
        complete_cache(client, delta)
        unseen = {op.key: op for op in applied.operations}  # the planned operations the delta has not shown
        deleted = set(delta.deleted)
        revision = planned.revision
        # Each document decoded where it is compared, one at a time, in the delta's order (no index of them).
        for key, current in zip(delta.items.keys, delta.items, strict=True):
            deleted.discard(key)  # a key deleted and made again is held, not deleted
            op = unseen.pop(key, None)
            if op is None:  # not planned (or shown twice)
                if not _untouched_since(current, revision):
                    return  # someone else wrote too
            elif op.desired is None or diff(op.kind, op.desired, current, applied.stack, op.key) is not None:
                return  # a deletion left the resource, or a change did not land as planned
        if any(key not in unseen for key in deleted):
            return  # someone else deleted too: the next plan is computed in full
        if any(op.desired is not None or op.key not in deleted for op in unseen.values()):
            return  # an operation left no trace
    after = Plan(operations=(), stack=applied.stack, graph=build([]), warnings=planned.warnings, notes=applied.notes)
    remember(dataclasses.replace(planned, revision=delta.revision), after, env)


def _untouched_since(document: dict[str, Any], revision: int) -> bool:
    """Whether the document was last written at or before `revision` (its resourceVersion says so)."""
    version = (document.get("metadata") or {}).get("resourceVersion")
    return isinstance(version, str) and version.isdigit() and int(version) <= revision


@contextlib.contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """No cyclic collection while a fleet is read and compared: the work makes millions of objects and few
    cycles, and at 1,000,000 resources the collector's rescans of the heap cost a tenth of a plan (plain
    reference counting still frees everything). Afterwards what the work made is frozen (`gc.freeze`, as
    `tenancy serve` freezes what start-up built) before the collector is enabled again: the collections
    that followed rescanned every one of those millions of young objects (6.6 s after loading 1,000,000
    manifests). A cycle among them is left to the end of the command; a command's process is short."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


__all__ = [
    "Fingerprint",
    "Header",
    "Planned",
    "Remembered",
    "after_apply",
    "fingerprint",
    "recall",
    "recalled_plan",
    "recalled_planned",
    "rememberable",
    "remember",
    "files_read",
    "without_cyclic_gc",
]
