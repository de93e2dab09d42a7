"""Documents in → validated: a resource document parsed for its kind, ready to be written.

`parse_document()` is pure (schema, per-kind spec rules, password strength and hashing) and runs before
the transaction takes the write lock; what it returns, `Parsed`, is what every write takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from tenancy_kinds import KINDS, ClaimValue, Kind, ResourceKey, dotted
from tenancy_backend.errors import Invalid, Violation, refuse
from tenancy_backend.passwords import fingerprint, hash_password
from tenancy_kinds.messages import explain
from tenancy_kinds.passwords import weakness

UNPROCESSABLE = 422


class Keep(Enum):
    """An update leaves this part of the stored resource as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP
Directory = dict[str, Any] | None | Literal[Keep.KEEP]  # see resources.directory


@dataclass(frozen=True)
class Parsed:
    """A validated document, ready to be written: the spec with defaults and without secrets."""

    kind: Kind
    organization: str  # '' for Organizations
    name: str
    spec: dict[str, Any]
    labels: dict[str, str]
    protected: bool
    password_hash: str | None  # set when the document carried a password
    password_fingerprint: str | None = None  # likewise (passwords.fingerprint), when the database has a pepper
    directory: Directory = KEEP  # what a directory (SCIM) keeps about it; KEEP: as stored (None on create)
    # Derived once, when the document is prepared (before the write lock): a bulk create reads them often.
    key: ResourceKey = field(init=False, compare=False)
    columns: dict[str, Any] = field(init=False, compare=False, repr=False)  # denormalised: see row_values
    claims: tuple[ClaimValue, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", ResourceKey(self.kind.name, self.organization, self.name))
        object.__setattr__(self, "columns", columns(self.kind, self.spec))
        object.__setattr__(self, "claims", tuple(self.kind.claim_values(self.spec)))


def columns(kind: Kind, spec: dict[str, Any]) -> dict[str, Any]:
    """What the queries of rules and statuses read from a spec, kept in columns of its own; every value is
    a fact of the table of kinds (the hierarchy, a person's role and billed tier, the domain a value must
    lie on, the domain a mailbox is consumed on)."""
    parent = kind.parent_field
    return {
        "parent": spec.get(parent) if parent else None,
        "role": spec.get(kind.role) if kind.role else None,
        "tier": spec.get(kind.billing) if kind.billing else None,
        "mail_domain": kind.owned_domain(spec),
        "mailbox_domain": kind.mailbox_domain(spec),
    }


class Judged(Invalid):
    """A well-formed document that one of its own rules (or the password's strength) refuses: told apart
    from a malformed one, so that a create says first that its name is taken, as a manifest set does."""


def kind_named(name: Any, path: str = "kind") -> Kind:
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        message = f"unknown kind {name!r}; known kinds: {', '.join(KINDS)}"
        raise Invalid(message, [{"path": path, "message": message}])
    return kind


def parse_document(
    kind: Kind,
    organization: str | None,
    document: Any,
    *,
    name: str | None = None,
    pepper: int | None = None,
    directory: Directory = KEEP,
) -> Parsed:
    """Validate a document for `kind` in `organization` (and, for updates, `name` from the path); a
    password is hashed, and fingerprinted with the database's `pepper`.

    Missing `metadata.organization` / `metadata.name` are filled from the path; different ones are refused.
    """
    if not isinstance(document, dict):
        raise Invalid(
            "the body must be a resource document (a JSON object with apiVersion, kind, metadata and spec)",
            [{"path": "", "message": "expected a JSON object"}],
        )
    check_text(document)
    if directory is not KEEP:
        check_text(directory, "status.directory")
    document = _filled(kind, organization, document, name)
    try:
        model = kind.validate_wire(document)
    except ValidationError as e:
        errors = validation_errors(e, model=kind.wire_document, value=document, sensitive=kind.sensitive)
        raise Invalid(f"invalid {kind.name} document: {_summary(errors)}", errors) from None
    meta = model.metadata  # type: ignore[attr-defined]
    owner = meta.organization if kind.scoped else ""
    _require_match(kind, organization, name, owner, meta.name)
    spec = model.spec.model_dump(by_alias=True, mode="json")  # type: ignore[attr-defined]
    kind.fill_derived(spec)  # stored filled in: a User's username is its email unless it says otherwise
    secrets_given = {f: spec.pop(f) for f in kind.sensitive if f in spec}
    violations = [Violation(UNPROCESSABLE, dotted(path), message) for path, message in kind.findings(meta.name, spec)]
    password = secrets_given.get("password")
    if password is not None:
        reason = weakness(password)
        if reason:
            violations.append(Violation(UNPROCESSABLE, "spec.password", f"the password is too weak: {reason}"))
    if violations:
        refused = refuse(violations)
        raise Judged(refused.detail, refused.errors)
    return Parsed(
        kind=kind,
        organization=owner,
        name=meta.name,
        spec=spec,
        labels=dict(meta.labels),
        protected=meta.protected,
        password_hash=hash_password(password) if password is not None else None,
        password_fingerprint=fingerprint(password, pepper) if password is not None and pepper is not None else None,
        directory=directory,
    )


def check_text(value: Any, path: str = "") -> None:
    """Refuse strings no database stores faithfully: NUL characters and unpaired surrogates."""
    if not _surely_clean(value):
        _check_text(value, path)


def _surely_clean(value: Any) -> bool:
    """True when no string in `value` can hold a NUL or an unpaired surrogate, judged by one orjson call
    instead of a walk in Python: orjson refuses surrogates and writes NUL as `\\u0000`. It serialises every
    dict, list and string the walk would visit, so anything it cannot vouch for (an error, a false alarm
    such as a literal backslash-u0000) is left to the walk, which finds the path."""
    try:
        return b"\\u0000" not in orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: surrogates, non-string keys, integers beyond 64 bits, ...
        return False


def _check_text(value: Any, path: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_text(k, path)
            _check_text(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_text(v, f"{path}[{i}]")
    elif isinstance(value, str):
        bad = "\x00" in value
        if not bad:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                bad = True
        if bad:
            message = "text may not contain NUL characters or unpaired surrogates"
            raise Invalid(message, [{"path": path, "message": message}])


def _filled(kind: Kind, organization: str | None, document: dict[str, Any], name: str | None) -> dict[str, Any]:
    meta = document.get("metadata")
    if not isinstance(meta, dict):
        return document
    meta = dict(meta)
    if kind.scoped and organization and "organization" not in meta:
        meta["organization"] = organization
    if name is not None and "name" not in meta:
        meta["name"] = name
    return {**document, "metadata": meta}


def _require_match(kind: Kind, organization: str | None, name: str | None, owner: str, doc_name: str) -> None:
    problems = []
    if kind.scoped and organization is not None and owner != organization:
        problems.append(
            Violation(
                UNPROCESSABLE,
                "metadata.organization",
                f"metadata.organization {owner!r} does not match the organization {organization!r} in the path; "
                "a resource cannot move between organizations (create it in the other one instead)",
            )
        )
    if name is not None and doc_name != name:
        problems.append(
            Violation(
                UNPROCESSABLE,
                "metadata.name",
                f"metadata.name {doc_name!r} does not match the name {name!r} in the path; "
                "renaming is not supported (create the resource under the new name instead)",
            )
        )
    if problems:
        raise refuse(problems)


def validation_errors(
    error: ValidationError,
    prefix: str = "",
    model: Any = None,
    value: Any = None,
    sensitive: frozenset[str] = frozenset(),
) -> list[dict[str, str]]:
    """pydantic errors → `[{path, message}]` with camelCase document paths such as `spec.domains[0]`, worded by
    the project's one translator (`tenancy_kinds.messages`), as manifests and Pulumi word them."""
    out = []
    for explained in explain(model, value, error.errors(include_url=False), sensitive):
        path = dotted(explained.path)
        out.append({"path": f"{prefix}.{path}" if prefix and path else prefix or path, "message": explained.text})
    return out


def _summary(errors: list[dict[str, str]]) -> str:
    head = "; ".join(f"{e['path'] or 'document'}: {e['message']}" for e in errors[:3])
    return head + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")


__all__ = [
    "KEEP",
    "Directory",
    "Judged",
    "Keep",
    "Parsed",
    "check_text",
    "columns",
    "kind_named",
    "parse_document",
    "validation_errors",
]
