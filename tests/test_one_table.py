"""The table of kinds is the one place that knows kinds apart: no condition elsewhere names a kind.

A module outside `tenancy_kinds` that writes `if kind == "User"`, `kind.name in ("User", "Alias")`,
`resources.c.kind == "MailboxQuota"` or `key.kind is USER.name` restates a fact of the table, and the
copies drift (issue #12). Such a module asks the table instead (`kind.mailbox`, `kind.plan_gated`,
`kind.scoped`, ...). Checked over the source with `ast`: every comparison, and every SQL `in_`/`not_in`.

`TENANT_KIND`, the table's name of the one unscoped kind (organizations, the tenants every other resource
lives under), is what the backend's storage of tenants asks for: it is a fact the table declares, not a
kind named in a condition.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tenancy_kinds import KINDS

REPO = Path(__file__).resolve().parents[1]
KIND_NAMES = set(KINDS) | {k.plural for k in KINDS.values()}
KIND_CONSTANTS = {"ORGANIZATION", "USER", "TEAM", "MAILBOX_QUOTA", "ALIAS", "CUSTOMER_SUBSCRIPTION"}
SQL_MEMBERSHIP = {"in_", "not_in", "notin_"}


def offenders(source: str) -> list[tuple[int, str]]:
    """(line, what) of each condition that names a kind."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            parts: list[ast.AST] = [node.left, *node.comparators]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in SQL_MEMBERSHIP):
            parts = list(node.args)
        else:
            continue
        for part in parts:
            for sub in _outside_calls(part):
                if isinstance(sub, ast.Constant) and sub.value in KIND_NAMES:
                    found.append((node.lineno, repr(sub.value)))
                elif isinstance(sub, ast.Name) and sub.id in KIND_CONSTANTS:
                    found.append((node.lineno, sub.id))
                elif isinstance(sub, ast.Attribute) and sub.attr in KIND_CONSTANTS:
                    found.append((node.lineno, sub.attr))
    return found


def _outside_calls(node: ast.AST) -> list[ast.AST]:
    """The node and what it holds, but not the arguments of calls in it: `get(ResourceKey(USER.name, ...))
    is None` builds a key, it does not tell kinds apart."""
    out: list[ast.AST] = [node]
    for child in ast.iter_child_nodes(node):
        if isinstance(node, ast.Call) and child is not node.func:
            continue
        out.extend(_outside_calls(child))
    return out


def _modules() -> list[Path]:
    out = []
    for package in ("provider", "tenancy_backend"):
        out.extend(p for p in sorted((REPO / package).rglob("*.py")) if "migrations" not in p.parts)
    return out


def test_no_condition_outside_the_table_names_a_kind() -> None:
    problems = [
        f"{path.relative_to(REPO)}:{line}: a condition names the kind {what}; ask the table of kinds instead"
        for path in _modules()
        for line, what in offenders(path.read_text(encoding="utf-8"))
    ]
    assert not problems, "\n".join(problems)


def test_the_check_finds_kind_ladders() -> None:
    source = (
        'if kind == "User":\n    pass\n'
        'ok = op.key.kind in ("Alias", "Team")\n'
        'q = resources.c.kind == "MailboxQuota"\n'
        'r = resources.c.kind.in_(["users"])\n'
        "s = key.kind is USER.name\n"
        "t = kinds.ORGANIZATION == k\n"
        "fine = kind.scoped and resources.c.kind == TENANT_KIND and KINDS[name].mailbox is None\n"
        "also = client.get(ResourceKey(ORGANIZATION.name, '', n)) is None\n"
        'but = KINDS["Organization"] is kind\n'
    )
    assert [line for line, _ in offenders(source)] == [1, 3, 3, 4, 5, 6, 7, 10]
