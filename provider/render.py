"""Plan → text, JSON and Markdown. Each renderer dispatches on the operation's type through one table
(`SHAPES`); none computes anything.

Secrets never reach a renderer's output: sensitive fields are carried as the marker `(sensitive)`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from provider.diff import labels_after
from provider.operations import SENSITIVE, Action, Adopt, Create, Delete, FieldDiff, Operation, Replace, Update
from provider.plan import Plan
from tenancy_kinds import TENANT_LABEL

# 1.1: selection; set-valued changes carry added/removed. 1.2: operations carry tenant; live_revision.
# 1.3: a create's and a delete's set-valued changes carry added/removed too.
FORMAT_VERSION = "1.3"

# (style, text) lines: the CLI colours them with rich on a terminal, prints them plain otherwise.
Line = tuple[str, str]

_STYLE = {"+": "green", "~": "yellow", "-": "red", "-/+": "magenta", "=": "cyan"}


def _value(value: Any) -> str:
    kind = type(value)
    if kind is str:  # the common case (a cold plan prints a million values): what json.dumps would write
        if value == SENSITIVE:
            return SENSITIVE
        if value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'
    elif kind is bool:
        return "true" if value else "false"
    elif kind is int:
        return str(value)
    elif value is None:
        return "null"
    if value == SENSITIVE:  # a str enum, say
        return SENSITIVE
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _added(d: FieldDiff, op: Operation) -> str:
    return f"+ {d.dotted}: {_value(d.after)}"


def _removed(d: FieldDiff, op: Operation) -> str:
    return f"- {d.dotted}: {_value(d.before)}"


def _item(value: Any) -> str:
    return value if isinstance(value, str) else _value(value)


def _joined_and_left(d: FieldDiff) -> str:
    """`+ dave, - carl`: a set-valued field's change, never the whole list (a team may have 10,000 members)."""
    return ", ".join([f"+ {_item(v)}" for v in d.added or ()] + [f"- {_item(v)}" for v in d.removed or ()])


def _changed(d: FieldDiff, op: Operation) -> str:
    if d.is_set:
        return f"~ {d.dotted}: {_joined_and_left(d)}"
    if d.before is None and not d.sensitive:
        return _added(d, op)
    if d.after is None:
        return _removed(d, op)
    if d.sensitive:
        return f"~ {d.dotted}: {SENSITIVE}"
    return f"~ {d.dotted}: {_value(d.before)} → {_value(d.after)}"


def _replaced(d: FieldDiff, op: Operation) -> str:
    assert isinstance(op, Replace)
    forces = "  # forces replacement" if d.path[1:2] and d.path[1] in op.immutable else ""
    return _changed(d, op) + (forces if d.before is not None and d.after is not None and not d.sensitive else "")


def _plain_header(op: Operation, stack: str | None) -> str:
    return ""


def _replace_header(op: Operation, stack: str | None) -> str:
    assert isinstance(op, Replace)
    return f" (replace: {', '.join(op.immutable)} {'is' if len(op.immutable) == 1 else 'are'} immutable)"


def _adopt_header(op: Operation, stack: str | None) -> str:
    return f" (adopt into stack {stack})"


def _no_json(op: Operation) -> dict[str, Any]:
    return {}


def _replace_json(op: Operation) -> dict[str, Any]:
    assert isinstance(op, Replace)
    return {"replace_fields": list(op.immutable)}


@dataclass(frozen=True)
class Shape:
    """How one type of operation is rendered: its header, whether its field diffs are listed, how each diff
    reads, and what its JSON adds."""

    header: Callable[[Operation, str | None], str]
    diff_line: Callable[[FieldDiff, Operation], str] | None  # None: the diffs are not listed
    json_extra: Callable[[Operation], dict[str, Any]]


SHAPES: dict[type[Operation], Shape] = {
    Create: Shape(_plain_header, _added, _no_json),
    Update: Shape(_plain_header, _changed, _no_json),
    Adopt: Shape(_adopt_header, _changed, _no_json),
    Replace: Shape(_replace_header, _replaced, _replace_json),
    Delete: Shape(_plain_header, None, _no_json),
}


def tenant_of(op: Operation, stack: str | None) -> str | None:
    """The Tenant (SPEC §6) the resource is expanded from, after the change (a delete: now); None when
    hand-written."""
    return labels_after(op, stack).get(TENANT_LABEL)


def _header(op: Operation, stack: str | None) -> str:
    tenant = tenant_of(op, stack)
    made_by = f" (tenant {tenant})" if tenant else ""
    return f"{op.symbol} {op.key}{SHAPES[type(op)].header(op, stack)}{made_by}"


def _diff_lines(op: Operation) -> list[str]:
    line = SHAPES[type(op)].diff_line
    return [] if line is None else [line(d, op) for d in op.diffs]


def text_lines(plan: Plan) -> list[Line]:
    return list(iter_text_lines(plan))


def iter_text_lines(plan: Plan) -> Iterator[Line]:
    """The plan's text, line by line (a cold plan of 100,000 resources is over a million lines: written as
    they come, they need not all be held at once)."""
    lines: list[Line] = []
    if plan.operations:
        stack = f" (stack {plan.stack})" if plan.stack else ""
        lines.append(("bold", f"Tenancy will perform the following actions{stack}:"))
        lines.append(("", ""))
    for op in plan.operations:
        style = _STYLE[op.symbol]
        lines.append((f"bold {style}", f"  {_header(op, plan.stack)}"))
        lines.extend((style, f"      {line}") for line in _diff_lines(op))
        lines.extend(("bold red", f"      ! {note}") for note in op.notes)
        lines.append(("", ""))
        if len(lines) >= 1024:
            yield from lines
            lines.clear()
    if not plan.operations:
        lines.append(("green", "No changes. The backend matches the manifests."))
        lines.append(("", ""))
    if plan.costs:
        lines.append(("bold", "Monthly cost:"))
        for c in plan.costs:
            lines.append(("", f"  {c.organization}: {c.before:.2f} → {c.after:.2f} {c.currency} ({c.delta:+.2f})"))
        lines.append(("", ""))
    for note in plan.notes:
        lines.append(("dim", f"Note: {note}"))
    for warning in plan.warnings:
        lines.append(("yellow", f"Warning: {warning}"))
    if plan.notes or plan.warnings:
        lines.append(("", ""))
    if plan.targeted:
        lines.append(("bold yellow", plan.targeted))
    lines.append(("bold", plan.summary))
    yield from lines


def text(plan: Plan) -> str:
    return "\n".join(t for _, t in text_lines(plan)) + "\n"


def _change_json(d: FieldDiff) -> dict[str, Any]:
    out: dict[str, Any] = {"path": d.dotted, "before": d.before, "after": d.after, "sensitive": d.sensitive}
    if d.is_set:  # a set-valued field: what joins and what leaves, beside the whole lists
        out["added"], out["removed"] = list(d.added or ()), list(d.removed or ())
    return out


def _op_json(op: Operation, plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {
        "action": op.action.value,
        "kind": op.key.kind,
        "organization": op.key.organization or None,
        "name": op.key.name,
        "tenant": plan.labels(op).get(TENANT_LABEL),
        "resource_version": op.live_version,
        "labels": plan.labels(op),
        "organization_labels": plan.organization_labels.get(op.key.organization) if op.key.organization else None,
        "changes": [_change_json(d) for d in op.diffs],
        "notes": list(op.notes),
    }
    out.update(SHAPES[type(op)].json_extra(op))
    return out


def _selection_json(plan: Plan) -> dict[str, Any] | None:
    if plan.selection is None:
        return None
    return {**plan.selection.as_json(), "not_planned": plan.not_planned, "text": plan.targeted}


def as_json(plan: Plan) -> dict[str, Any]:
    """The stable machine-readable plan (documented in docs/plan-json.md)."""
    return {
        "format_version": FORMAT_VERSION,
        "stack": plan.stack,
        "live_revision": plan.live_revision,
        "has_changes": plan.has_changes,
        "summary": {
            "create": plan.count(Action.CREATE),
            "update": plan.count(Action.UPDATE, Action.ADOPT),
            "adopt": plan.count(Action.ADOPT),
            "replace": plan.count(Action.REPLACE),
            "delete": plan.count(Action.DELETE),
            "text": plan.summary,
        },
        "selection": _selection_json(plan),
        "operations": [_op_json(op, plan) for op in plan.operations],
        "costs": [
            {
                "organization": c.organization,
                "before": f"{c.before:.2f}",
                "after": f"{c.after:.2f}",
                "delta": f"{c.delta:+.2f}",
                "currency": c.currency,
                "balance": None if c.balance is None else f"{c.balance:.2f}",
            }
            for c in plan.costs
        ],
        "warnings": list(plan.warnings),
        "notes": list(plan.notes),
    }


def json_text(plan: Plan) -> str:
    return json.dumps(as_json(plan), indent=2, ensure_ascii=False) + "\n"


def markdown(plan: Plan) -> str:
    """A pull-request comment: the summary up front, the changes folded, costs as a table."""
    stack = f" — stack `{plan.stack}`" if plan.stack else ""
    out = [f"### Tenancy plan{stack}", "", f"**{plan.summary}**", ""]
    if plan.targeted:
        out += [f"_{plan.targeted}_", ""]
    if plan.operations:
        out += [f"<details><summary>{len(plan.operations)} change(s)</summary>", "", "```diff"]
        for op in plan.operations:
            out.append(_header(op, plan.stack))
            out += [f"    {line}" for line in _diff_lines(op)]
            out += [f"!   {note}" for note in op.notes]
        out += ["```", "", "</details>", ""]
    else:
        out += ["No changes. The backend matches the manifests.", ""]
    if plan.costs:
        out += ["| Organization | Monthly cost before | after | change |", "|---|---:|---:|---:|"]
        out += [
            f"| `{c.organization}` | {c.before:.2f} {c.currency} | {c.after:.2f} {c.currency} | {c.delta:+.2f} |"
            for c in plan.costs
        ]
        out.append("")
    out += [f"> **Warning:** {w}" for w in plan.warnings]
    out += [f"> Note: {n}" for n in plan.notes]
    return "\n".join(out).rstrip() + "\n"
