"""The policy evaluator on plain data: conftest's conventions, both styles conftest users write, errors.

Each expected result is what conftest (policy/engine.go, output/standard.go) gives for the same files and
input; the counts in the summary lines were worked out by its rules (one test per rule definition, one
result per message, a rule without messages passes).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provider import policy
from provider.errors import ConfigError, PolicyError
from provider.policy import Outcome

PLAN = {
    "format_version": "1.0",
    "stack": "prod",
    "operations": [
        {"action": "delete", "kind": "User", "organization": "acme", "name": "bob", "labels": {},
         "organization_labels": {"tier": "master"}, "changes": []},
        {"action": "update", "kind": "User", "organization": "acme", "name": "ann", "labels": {"team": "x"},
         "organization_labels": {"tier": "master"},
         "changes": [{"path": "spec.subscription", "before": "free", "after": "pro", "sensitive": False}]},
    ],
}

V1_DENY = """package main

import rego.v1

deny contains msg if {
\tsome op in input.operations
\top.action == "delete"
\tmsg := sprintf("%s/%s is deleted", [op.organization, op.name])
}
"""

OBJECT_VIOLATION = """package main

import rego.v1

violation contains {"msg": msg, "resource": op.name, "_loc": {"file": "x", "line": 1}} if {
\tsome op in input.operations
\tsome change in op.changes
\tchange.after == "pro"
\tmsg := sprintf("%s moves to pro", [op.name])
}
"""


def policies(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "policies" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path / "policies"


def run(tmp_path: Path, files: dict[str, str], document: dict = PLAN) -> policy.PolicyReport:
    return policy.evaluate(policy.load([policies(tmp_path, files)]), document)


def lines(report: policy.PolicyReport, root: Path) -> list[str]:
    return [str(r).replace(f"{root}/policies/", "") for r in report.results]


def test_rego_v1_deny_contains_msg_if_fails_with_the_file_and_the_message(tmp_path: Path):
    report = run(tmp_path, {"deletions.rego": V1_DENY})
    assert lines(report, tmp_path) == ["FAIL - deletions.rego - main - acme/bob is deleted"]
    assert not report.ok
    assert report.summary == "1 test, 0 passed, 0 warnings, 1 failure, 0 exceptions"


def test_objects_with_msg_keep_their_other_keys_as_metadata(tmp_path: Path):
    report = run(tmp_path, {"pro.rego": OBJECT_VIOLATION})
    [failure] = report.failures
    assert (failure.outcome, failure.rule, failure.message) == (Outcome.FAIL, "violation", "ann moves to pro")
    assert dict(failure.metadata) == {"resource": "ann"}  # `_loc` is conftest's own, dropped like it does


def test_warn_warns_and_does_not_fail(tmp_path: Path):
    report = run(tmp_path, {"w.rego": V1_DENY.replace("deny contains", "warn contains")})
    assert [r.outcome for r in report.results] == [Outcome.WARN]
    assert report.ok and report.warnings[0].message == "acme/bob is deleted"
    assert report.summary == "1 test, 0 passed, 1 warning, 0 failures, 0 exceptions"


def test_rule_names_follow_conftest_prefixes_and_only_package_main_counts(tmp_path: Path):
    report = run(tmp_path, {
        "names.rego": """package main
import rego.v1
deny_big contains "deny_big" if true
violation_pro_moves contains "violation_pro_moves" if true
warn_x_y contains "warn_x_y" if true
denied contains "not a rule conftest reads" if true
denyall contains "nor this" if true
""",
        "other.rego": 'package other\nimport rego.v1\ndeny contains "another namespace" if true\n',
    })
    assert sorted((r.outcome.value, r.message) for r in report.results) == [
        ("FAIL", "deny_big"), ("FAIL", "violation_pro_moves"), ("WARN", "warn_x_y"),
    ]


def test_rego_v0_future_keywords_style_works_as_in_conftest(tmp_path: Path):
    source = V1_DENY.replace("import rego.v1", "import future.keywords.contains\nimport future.keywords.if\n"
                                               "import future.keywords.in")
    assert [r.message for r in run(tmp_path, {"f.rego": source}).failures] == ["acme/bob is deleted"]


def test_a_directory_of_files_is_one_package_and_each_message_names_its_file(tmp_path: Path):
    report = run(tmp_path, {
        "a_deletions.rego": V1_DENY,
        "b_pro.rego": OBJECT_VIOLATION.replace("violation contains", "deny contains"),
        # a helper in package main used by another file, and a library package imported with `data.`
        "c_master.rego": """package main
import rego.v1
import data.lib.tenancy
deny contains msg if {
\tsome op in input.operations
\tmaster(op)
\ttenancy.is_user(op)
\tmsg := sprintf("%s is in a master tenant", [op.name])
}
warn contains "nothing to warn about" if false
""",
        "helpers/master.rego": 'package main\nimport rego.v1\nmaster(op) if op.organization_labels.tier == "master"\n',
        "lib/tenancy.rego": 'package lib.tenancy\nimport rego.v1\nis_user(op) if op.kind == "User"\n',
    })
    assert lines(report, tmp_path) == [
        "FAIL - a_deletions.rego - main - acme/bob is deleted",
        "FAIL - b_pro.rego - main - ann moves to pro",
        "FAIL - c_master.rego - main - ann is in a master tenant",
        "FAIL - c_master.rego - main - bob is in a master tenant",
    ]
    # conftest: 4 rule definitions (3 deny, 1 warn); deny gives 4 messages, warn none: 5 tests, 1 passed
    assert report.summary == "5 tests, 1 passed, 0 warnings, 4 failures, 0 exceptions"


def test_a_message_two_files_give_names_both(tmp_path: Path):
    report = run(tmp_path, {"one.rego": V1_DENY, "two.rego": V1_DENY})
    assert lines(report, tmp_path) == ["FAIL - one.rego, two.rego - main - acme/bob is deleted"]


def test_an_exception_names_a_rule_by_its_suffix_and_turns_it_into_one_exception(tmp_path: Path):
    source = V1_DENY.replace("deny contains", "deny_deletions contains") + (
        '\nexception contains ["deletions"] if input.stack == "prod"\n'
    )
    report = run(tmp_path, {"e.rego": source})
    assert [(r.outcome, r.message) for r in report.results] == [
        (Outcome.EXCEPTION, 'data.main.exception[_][_] == "deletions"')
    ]
    assert report.ok and report.summary == "1 test, 0 passed, 0 warnings, 0 failures, 1 exception"
    assert not run(tmp_path, {"e.rego": source}, {**PLAN, "stack": "dev"}).ok


def test_nothing_to_report_passes_every_rule(tmp_path: Path):
    report = run(tmp_path, {"d.rego": V1_DENY, "o.rego": OBJECT_VIOLATION}, {"operations": []})
    assert report.results == () and report.ok
    assert report.summary == "2 tests, 2 passed, 0 warnings, 0 failures, 0 exceptions"


def test_a_syntax_error_names_the_file_line_and_column(tmp_path: Path):
    broken = (
        "package main\n\nimport rego.v1\n\n# é before the error: columns count characters\n"
        "deny contains msg if {\n\tmsg := \n}\n"
    )
    with pytest.raises(PolicyError) as raised:
        policy.load([policies(tmp_path, {"good.rego": V1_DENY, "broken.rego": broken})])
    error = raised.value
    assert (Path(error.file).name, error.line, error.col) == ("broken.rego", 7, 6)
    assert str(error) == f"{error.file}:7:6: Rego syntax error: Invalid assignment operator"


def test_an_unclosed_brace_is_located(tmp_path: Path):
    with pytest.raises(PolicyError) as raised:
        policy.load([policies(tmp_path, {"open.rego": 'package main\n\ndeny contains "x" if {\n'})])
    assert (raised.value.line, "unclosed" in raised.value.reason) == (3, True)


def test_a_v0_partial_rule_is_refused_where_it_is_written(tmp_path: Path):
    """conftest (Rego v1) refuses `deny[msg] { ... }`; rego-cpp would read it as an object that never fails."""
    v0 = 'package main\n\n\ndeny[msg] {\n\tinput.operations[_].action == "delete"\n\tmsg := "x"\n}\n'
    with pytest.raises(PolicyError) as raised:
        run(tmp_path, {"v0.rego": v0})
    assert (Path(raised.value.file).name, raised.value.line) == ("v0.rego", 4)
    assert "write `deny contains msg if { ... }`" in raised.value.reason


def test_a_rule_that_is_not_a_set_is_refused(tmp_path: Path):
    with pytest.raises(PolicyError, match="`deny` is true, not a set of messages"):
        run(tmp_path, {"b.rego": "package main\nimport rego.v1\ndeny if count(input.operations) > 1\n"})


def test_a_message_object_without_msg_is_refused_as_conftest_does(tmp_path: Path):
    with pytest.raises(PolicyError, match="a string or an object with a string `msg`"):
        run(tmp_path, {"m.rego": 'package main\nimport rego.v1\ndeny contains {"message": "x"} if true\n'})


def test_an_unknown_function_is_named_at_load_time(tmp_path: Path):
    source = "package main\nimport rego.v1\n\ndeny contains msg if {\n\tmsg := no_such(input)\n}\n"
    with pytest.raises(PolicyError) as raised:
        policy.load([policies(tmp_path, {"f.rego": source})])
    assert (raised.value.line, raised.value.reason) == (5, "unknown function no_such()")


def test_a_policy_cannot_read_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TENANCY_TOKEN", "tok_SECRET_abc123")
    monkeypatch.setenv("ANNA_PW", "Zq8#vLm2!pRt7wXy")
    leak = "package main\nimport rego.v1\ndeny contains msg if { msg := sprintf(\"%v\", [opa.runtime().env]) }\n"
    before = dict(os.environ)
    [line] = lines(run(tmp_path, {"leak.rego": leak}), tmp_path)
    assert line.startswith("FAIL - leak.rego - main - {")
    assert not any(name in line or value in line for name, value in before.items() if len(value) > 3)
    assert dict(os.environ) == before  # put back after the query, as it was


def test_print_is_captured_and_kept_off_standard_output(tmp_path: Path, capfd: pytest.CaptureFixture[str]):
    source = 'package main\nimport rego.v1\nwarn contains "w" if {\n\tprint("looking at", count(input.operations))\n}\n'
    report = run(tmp_path, {"p.rego": source})
    assert report.prints == ("looking at 2",)
    assert "looking at" not in capfd.readouterr().out


def test_input_is_the_document_itself(tmp_path: Path):
    """`json.marshal(input)` gives the document back (rego-cpp needs the input as JSON text for that)."""
    source = "package main\nimport rego.v1\nwarn contains json.marshal(input) if true\n"
    [warning] = run(tmp_path, {"i.rego": source}).warnings
    import json

    assert json.loads(warning.message) == PLAN


def test_paths_a_file_a_directory_hidden_entries_and_mistakes(tmp_path: Path):
    root = policies(
        tmp_path,
        {"a.rego": V1_DENY, "sub/b.rego": V1_DENY, ".hidden/c.rego": "not rego", "notes.txt": "not rego either"},
    )
    assert [p.relative_to(root).as_posix() for p in policy.discover([root, root / "a.rego"])] == [
        "a.rego",
        "sub/b.rego",
    ]
    with pytest.raises(ConfigError, match="no such file"):
        policy.discover([root / "missing.rego"])
    with pytest.raises(ConfigError, match="is not a Rego file"):
        policy.discover([root / "notes.txt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no policies \(\*\.rego\) found"):
        policy.discover([tmp_path / "empty"])
