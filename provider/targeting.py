"""Which changes a targeted plan holds (`--target`, `--exclude`, `--selector`), computed on the graph of the
whole plan. Pure.

An address is `Organization/NAME` or `KIND/ORGANIZATION/NAME`, with `*` matching within one segment
(`User/acme/*`, `*/acme/*`), or `Tenant/NAME`: every resource that tenant expands to (they carry the label
`tenancy/tenant`, after the change or, for a deletion, now). A selector is the API's label selector
(`tenancy_kinds.selectors`), matched against the same labels.

The selection keeps or drops whole *units* of the graph (a replace's steps and whatever lies between them
are one changeset, indivisible):

- with targets or a selector, the units holding a change that matches (a target, if any, and the selector,
  if any) are kept, with every unit they wait for: a new organization before its new user, a quota raise
  before the mailbox, a team letting go of a user before the user is deleted;
- `--exclude` drops the units holding a change that matches it, and every unit that waits for them; a
  unit kept only because a dropped one waited for it goes too.

What is kept is closed under waiting, so the targeted plan applies in an order as safe as the whole one.
An address that matches no resource at all is an error naming the closest addresses; one that matches a
resource without a change simply selects nothing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provider.diff import labels_after, labels_of
from provider.errors import ConfigError
from provider.operations import Operation
from provider.ordering import Graph
from tenancy_kinds import KINDS, TENANT_LABEL, ResourceKey
from tenancy_kinds.selectors import SELECTOR_EXAMPLES, SelectorError, Term, matches, parse_selector

TENANT = "Tenant"  # the address of what a Tenant expands to: not a kind of the backend, a label
FORMS = "Organization/NAME, KIND/ORGANIZATION/NAME (`*` matches within one segment) or Tenant/NAME"
_SEGMENT = re.compile(r"^[A-Za-z0-9*._-]+$")
CLOSEST = 5


def address_of(key: ResourceKey) -> str:
    """A resource's address: `Organization/acme`, `User/acme/bob`."""
    if KINDS[key.kind].scoped:
        return f"{key.kind}/{key.organization}/{key.name}"
    return f"{key.kind}/{key.name}"


def _glob(segments: list[str]) -> re.Pattern[str]:
    """`*` matches any characters within one segment, everything else itself."""
    return re.compile("/".join("[^/]*".join(re.escape(part) for part in s.split("*")) for s in segments))


@dataclass(frozen=True)
class Address:
    """One `--target` / `--exclude` address, parsed."""

    text: str
    pattern: re.Pattern[str] = field(compare=False)
    tenant: bool = False  # `Tenant/NAME`: the pattern is matched against the tenant label

    @classmethod
    def parse(cls, text: str, option: str) -> Address:
        segments = text.split("/")
        if len(segments) not in (2, 3):
            raise ConfigError(f"{option} {text!r} is not an address: write {FORMS}")
        for segment in segments:
            if not _SEGMENT.match(segment):
                what = "an empty segment" if not segment else f"the segment {segment!r}"
                raise ConfigError(
                    f"{option} {text!r} has {what}: names are letters, digits and '-', and `*` matches within "
                    f"one segment ({FORMS})"
                )
        if segments[0] == TENANT:
            if len(segments) != 2:
                raise ConfigError(f"{option} {text!r}: a tenant is addressed as Tenant/NAME")
            return cls(text, _glob(segments[1:]), tenant=True)
        return cls(text, _glob(segments))

    def matches(self, key: ResourceKey, labels: Mapping[str, str]) -> bool:
        if self.tenant:
            tenant = labels.get(TENANT_LABEL)
            return tenant is not None and self.pattern.fullmatch(tenant) is not None
        return self.pattern.fullmatch(address_of(key)) is not None


@dataclass(frozen=True)
class Selection:
    """What a targeted plan is restricted to, as the user gave it (a saved plan keeps it so)."""

    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    selector: str | None = None

    def __post_init__(self) -> None:
        self.parsed()  # a malformed address or selector is refused when given, before anything is read

    def __bool__(self) -> bool:
        return bool(self.targets or self.excludes or self.selector)

    @property
    def narrows(self) -> bool:
        """Whether only matching changes are planned (a target or a selector), not everything but excluded."""
        return bool(self.targets or self.selector)

    def parsed(self) -> tuple[list[Address], list[Address], list[Term]]:
        targets = [Address.parse(t, "--target") for t in self.targets]
        excludes = [Address.parse(t, "--exclude") for t in self.excludes]
        try:
            terms = parse_selector(self.selector)
        except SelectorError as e:
            raise ConfigError(f"--selector {e.selector[:200]!r}: {e.why}. {SELECTOR_EXAMPLES}") from None
        return targets, excludes, terms

    def as_json(self) -> dict[str, object]:
        return {"targets": list(self.targets), "excludes": list(self.excludes), "selector": self.selector}

    @classmethod
    def from_json(cls, document: Mapping[str, object] | None) -> Selection:
        """The selection a saved plan recorded (an empty one for a plan saved without); its shape is the saved
        plan's schema's to check (`engine.load_saved`): anything else is a ValueError, never no selection."""
        if document is None:
            return cls()
        targets, excludes, selector = document.get("targets"), document.get("excludes"), document.get("selector")
        if not (isinstance(targets, list) and isinstance(excludes, list) and isinstance(selector, (str, type(None)))):
            raise ValueError(f"not a selection as a saved plan records it: {dict(document)!r}")
        return cls(tuple(str(t) for t in targets), tuple(str(e) for e in excludes), selector)


# The resources there are (declared or live) with their labels: what an address may name.
Known = Mapping[ResourceKey, Mapping[str, str]]
Match = Callable[[Operation, dict[str, str]], bool]


def restrict(graph: Graph, selection: Selection, stack: str | None, known: Known) -> Graph:
    """The graph of the changes the selection keeps (see the module's docstring)."""
    targets, excludes, terms = selection.parsed()
    _require_known([("--target", a) for a in targets] + [("--exclude", a) for a in excludes], known)
    labels = [labels_after(op, stack) for op in graph.operations]

    def units_where(match: Match) -> set[int]:
        return {
            u for u, unit in enumerate(graph.units)
            if any(match(graph.operations[step.op], labels[step.op]) for step in unit)
        }

    def wanted(op: Operation, its: dict[str, str]) -> bool:
        return (not targets or any(a.matches(op.key, its) for a in targets)) and matches(terms, its)

    def unwanted(op: Operation, its: dict[str, str]) -> bool:
        return any(a.matches(op.key, its) for a in excludes)

    left_out = graph.with_what_waits_for_them(units_where(unwanted)) if excludes else set()
    if selection.narrows:  # what a target needed goes with it, when an exclusion takes the target
        kept = graph.with_what_they_wait_for(units_where(wanted) - left_out) - left_out
    else:
        kept = set(range(len(graph.units))) - left_out
    return graph.restricted(kept)


def known_resources(documents: Iterable[dict[str, Any]]) -> dict[ResourceKey, dict[str, str]]:
    """Every resource of these documents (declared and live) with all the labels it carries on either side."""
    out: dict[ResourceKey, dict[str, str]] = {}
    for document in documents:
        if document.get("kind") in KINDS:
            out.setdefault(ResourceKey.of(document), {}).update(labels_of(document))
    return out


def _require_known(addresses: list[tuple[str, Address]], known: Known) -> None:
    """Each address names at least one resource there is; else an error with the closest addresses."""
    unmatched = [(o, a) for o, a in addresses if not any(a.matches(key, labels) for key, labels in known.items())]
    if not unmatched:
        return
    candidates = sorted({address_of(key) for key in known} | {
        f"{TENANT}/{labels[TENANT_LABEL]}" for labels in known.values() if TENANT_LABEL in labels
    })
    raise ConfigError("\n".join(_no_match(a, option, candidates) for option, a in unmatched))


def _no_match(address: Address, option: str, candidates: list[str]) -> str:
    closest = difflib.get_close_matches(address.text, candidates, n=CLOSEST, cutoff=0.6)
    if closest:
        hint = f"the closest addresses: {', '.join(closest)}"
    elif candidates:
        hint = f"addresses are {FORMS}, such as {', '.join(candidates[:3])}"
    else:
        hint = "neither the manifests nor the backend hold any resource"
    return f"{option} {address.text} matches no resource; {hint}"


__all__ = ["FORMS", "TENANT", "Address", "Selection", "address_of", "known_resources", "restrict"]
