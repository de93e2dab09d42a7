"""Policies as code: Rego files run in-process against the JSON plan, with conftest's conventions.

`load(paths)` reads every `*.rego` file under the paths (a file, or a directory read recursively) and
compiles them together; `evaluate(policies, document)` runs them with `input` = the plan document and
returns typed results. Conftest's conventions, from its `policy/engine.go` and `output/`:

- only rules of `package main` count (conftest's default `--namespace main`); every file is loaded
  together, so helpers in other packages (`import data.lib`) and in other files of `main` work;
- rules named `deny`, `violation` or those with a `_suffix` (`deny_big_plan`) are failures, `warn` and
  `warn_*` are warnings; a message is a string or an object with a string `msg` (its other keys are
  kept as metadata, `_loc` dropped);
- `exception contains ["suffix"]` turns every result of the rule `deny_suffix` (or `warn_suffix`) into
  one exception, shown, never failing.

The engine is regopy (rego-cpp 1.5.2). What it does differently from OPA, measured and handled here:

- It parses Rego v1 (`deny contains msg if`, with or without `import rego.v1` or `future.keywords`),
  as conftest does by default, but it also accepts v0 bodies without `if` and reads `deny[msg] { … }`
  as a partial *object* (`{"msg": true}`), where conftest (v1) refuses the file; such a rule is
  refused here too, with the file and line of its head, rather than silently never failing.
- A rule whose value is not a set (`deny if …` gives `true`) is ignored by conftest, so it never fails;
  it is refused here for the same reason.
- Syntax errors come as an s-expression carrying the module name and a *byte* offset; they are
  turned into file:line:col here. Some evaluation errors (a conflict between complete rules) come
  with no detail at all.
- Unlike OPA it does not refuse an unsafe variable at compile time (`deny contains msg if { true }`
  yields nothing instead of an error).
- Input handed over as Python values (`regopy.Input`) makes `json.marshal(input)` undefined as soon
  as it holds an array; the input is handed over as JSON text instead, which rego-cpp parses itself.
- `print()` writes to the process's file descriptor 1: it is captured during evaluation and handed
  back in the report, so that `plan --json` keeps standard output for the plan alone.
- `opa.runtime()` answers the process's environment as `env`, read when a query runs: `evaluate` runs
  with an empty environment (`_without_environment`), so `env` is `{}` in every message (loading only
  compiles: its answers are not shown, and it may run beside the backend's read, which needs the
  environment). A policy is code a pull request can
  change; it must not print the CI's token or a password read `fromEnv` into the build log.

Which file a message comes from is not part of Rego's answer (conftest names the input file, not the
policy). It is found from a view of the package per file (`_views`), evaluated only when several files
define a rule that gave messages; the results themselves are always those of all files together.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import regopy  # type: ignore[import-untyped]  # ships no type information

from provider.errors import ConfigError, PolicyError

NAMESPACE = "main"
SUFFIX = ".rego"
FAILURE_RULE = re.compile(r"^(deny|violation)(_[a-zA-Z0-9]+)*$")
WARNING_RULE = re.compile(r"^warn(_[a-zA-Z0-9]+)*$")
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
# Telling which file a message comes from (`_views`): the private package of each file's view, and the
# rule heads of the other files, renamed there (opa fmt writes every rule head at the start of a line).
_VIEW_PACKAGE = "tenancy_policy_view_{}"
_RULE_HEAD = re.compile(r"^((?:default[ \t]+)?)((?:deny|violation|warn)(?:_[A-Za-z0-9]+)*)\b", re.MULTILINE)
_SET_ASIDE = "tenancy_set_aside_"


class Outcome(str, Enum):
    """Conftest's words for a result, in the order it prints them."""

    WARN = "WARN"
    FAIL = "FAIL"
    EXCEPTION = "EXCP"


@dataclass(frozen=True)
class PolicyFile:
    path: str  # as the user named it (shown in every result and error)
    source: str
    package: str

    @property
    def in_namespace(self) -> bool:
        return self.package == NAMESPACE


@dataclass(frozen=True)
class PolicySet:
    """Policy files that compiled together, and the conftest rules each `package main` file defines."""

    files: tuple[PolicyFile, ...]
    rules: Mapping[str, tuple[str, ...]]  # file path → its deny/violation/warn rule names

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]

    def defining(self, rule: str) -> list[str]:
        return [path for path, names in self.rules.items() if rule in names]


@dataclass(frozen=True)
class PolicyResult:
    outcome: Outcome
    policy: str  # the policy file the message comes from ("a.rego, b.rego" when several give it)
    rule: str
    message: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.outcome.value} - {self.policy} - {NAMESPACE} - {self.message}"


@dataclass(frozen=True)
class PolicyReport:
    results: tuple[PolicyResult, ...]
    passed: int
    prints: tuple[str, ...] = ()

    def of(self, outcome: Outcome) -> list[PolicyResult]:
        return [r for r in self.results if r.outcome is outcome]

    @property
    def failures(self) -> list[PolicyResult]:
        return self.of(Outcome.FAIL)

    @property
    def warnings(self) -> list[PolicyResult]:
        return self.of(Outcome.WARN)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def summary(self) -> str:
        """Conftest's closing line: `3 tests, 1 passed, 1 warning, 1 failure, 0 exceptions`."""
        counts = [(len(self.warnings), "warning"), (len(self.failures), "failure"),
                  (len(self.of(Outcome.EXCEPTION)), "exception")]
        tests = self.passed + sum(n for n, _ in counts)
        parts = [_plural(tests, "test"), f"{self.passed} passed"] + [_plural(n, word) for n, word in counts]
        return ", ".join(parts)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# --- loading ------------------------------------------------------------------------------------------


def discover(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The `.rego` files under `paths`, each once: a file as given, a directory recursively and sorted
    (hidden entries skipped, as for manifests)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ConfigError(f"policy {path}: no such file or directory")
        if path.is_file():
            if path.suffix != SUFFIX:
                raise ConfigError(f"policy {path} is not a Rego file: give a *.rego file or a directory of them")
            files = [path]
        else:
            files = _walk(path)
            if not files:
                raise ConfigError(f"no policies (*.rego) found in {path}")
        found.extend(f for f in files if f.resolve() not in {g.resolve() for g in found})
    return found


def _walk(directory: Path) -> list[Path]:
    found: list[Path] = []
    for current, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(current) / n for n in names if n.endswith(SUFFIX) and not n.startswith("."))
    return sorted(found, key=lambda p: p.relative_to(directory).parts)


def load(paths: Iterable[str | os.PathLike[str]]) -> PolicySet:
    """Read and compile every policy under `paths`. Raises PolicyError (file, line) for a bad policy."""
    files = tuple(_read(path) for path in discover(paths))
    _Session(files, {}).query(f"data.{NAMESPACE}")  # every file parses and compiles: errors show now
    return PolicySet(files, _rule_index(files))


def _read(path: Path) -> PolicyFile:
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PolicyError(f"cannot read the policy: {e.strerror}", file=str(path)) from e
    except UnicodeDecodeError as e:
        raise PolicyError("the policy is not UTF-8 text", file=str(path)) from e
    declared = _PACKAGE.search(source)  # a comment line starts with `#`: never a match
    if declared is None:
        raise PolicyError("no `package` declaration: start the policy with `package main`", file=str(path),
                          line=1, col=1)
    return PolicyFile(str(path), source, declared.group(1))


def _rule_index(files: tuple[PolicyFile, ...]) -> dict[str, tuple[str, ...]]:
    """Each `package main` file's conftest rules, read from its view (`_views`) with input `{}`: a set rule
    is there even when empty. Empty when the views cannot run (then no file is told from another)."""
    views = _views(files)
    try:
        values = _Session(_with_views(files, views), {}).query(_views_query(views))
    except PolicyError:
        return {}
    return {path: tuple(sorted(n for n in values.get(package) or {} if _is_rule(n)))
            for path, (package, _) in views.items()}


def _views(files: Sequence[PolicyFile]) -> dict[str, tuple[str, list[PolicyFile]]]:
    """For each `package main` file, the whole package moved to a package of its own in which only that
    file's conftest rules keep their names: there, `deny` holds that file's messages alone, while every
    helper of every file is still in reach. Lines and columns stay as written."""
    main = [f for f in files if f.in_namespace]
    views = {}
    for index, mine in enumerate(main):
        package = _VIEW_PACKAGE.format(index)
        views[mine.path] = (package, [_moved(f, package, keep_rules=f is mine) for f in main])
    return views


def _moved(policy: PolicyFile, package: str, keep_rules: bool) -> PolicyFile:
    declared = _PACKAGE.search(policy.source)
    assert declared is not None  # _read found it
    source = policy.source[: declared.start(1)] + package + policy.source[declared.end(1):]
    if not keep_rules:
        source = _RULE_HEAD.sub(lambda m: m.group(1) + _SET_ASIDE + m.group(2), source)
    return PolicyFile(policy.path, source, package)


def _with_views(files: Sequence[PolicyFile], views: Mapping[str, tuple[str, list[PolicyFile]]]) -> list[PolicyFile]:
    return [*files, *(f for _, moved in views.values() for f in moved)]


def _views_query(views: Mapping[str, tuple[str, list[PolicyFile]]]) -> str:
    return "{" + ", ".join(f'"{package}": data.{package}' for package, _ in views.values()) + "}"


def _is_rule(name: str) -> bool:
    return bool(FAILURE_RULE.match(name) or WARNING_RULE.match(name))


# --- evaluating ---------------------------------------------------------------------------------------


def evaluate(policies: PolicySet, document: Mapping[str, Any]) -> PolicyReport:
    """Run every policy with `input` = `document` (the JSON plan); the results are conftest's. Run with an
    empty environment (`_without_environment`): called once the plan is made, when nothing else runs."""
    with _without_environment():
        return _evaluate(policies, document)


def _evaluate(policies: PolicySet, document: Mapping[str, Any]) -> PolicyReport:
    prints: list[str] = []
    # The views load beside the policies (their own packages: the answer for `main` is the same) when they
    # compiled at load time, so that telling files apart never parses the input twice.
    views = _views(policies.files) if policies.rules else {}
    session = _Session(_with_views(policies.files, views), document)
    namespace = session.query(f"data.{NAMESPACE}", prints)
    excepted = _exception_names(namespace.get("exception"))
    indexed = {n for names in policies.rules.values() for n in names}
    rules = sorted({n for n in namespace if _is_rule(n)} | indexed)
    found = {rule: _messages(policies, rule, namespace[rule]) for rule in rules if rule in namespace}
    ambiguous = [r for r in rules if found.get(r) and len(policies.defining(r)) > 1]
    givers = _attribute(session, views, ambiguous)
    results: list[PolicyResult] = []
    passed = 0
    for rule in rules:
        files = policies.defining(rule) or [f.path for f in policies.files if f.in_namespace]
        if _suffix(rule) in excepted:
            query = f'data.{NAMESPACE}.exception[_][_] == "{_suffix(rule)}"'
            results.append(PolicyResult(Outcome.EXCEPTION, ", ".join(files), rule, query))
            continue
        outcome = Outcome.FAIL if FAILURE_RULE.match(rule) else Outcome.WARN
        given: set[str] = set()
        for value, message, metadata in found.get(rule, []):
            origin = files if len(files) == 1 else _givers(givers, rule, value, files)
            given.update(origin)
            results.append(PolicyResult(outcome, ", ".join(origin), rule, message, metadata))
        passed += len([f for f in files if f not in given])
    order = list(Outcome)
    results.sort(key=lambda r: (order.index(r.outcome), r.policy, r.rule, r.message))
    return PolicyReport(tuple(results), passed, tuple(prints))


def _suffix(rule: str) -> str:
    """The name `exception` uses for a rule: conftest strips `violation_`, then `deny_`, then `warn_`."""
    if rule in ("deny", "violation", "warn"):
        return ""
    for prefix in ("violation_", "deny_", "warn_"):
        rule = rule.removeprefix(prefix)
    return rule


def _exception_names(value: Any) -> set[str]:
    """The rule names `exception contains [...]` lists (a set of arrays of names)."""
    return {n for entry in value or [] if isinstance(entry, list) for n in entry if isinstance(n, str)}


Message = tuple[Any, str, dict[str, Any]]  # (the raw value, its text, its metadata)


def _messages(policies: PolicySet, rule: str, value: Any) -> list[Message]:
    """The messages of one rule; a rule that could never fail (not a set) is refused, not ignored."""
    if not isinstance(value, list):
        raise _shape_error(policies, rule, value)
    return [_message(policies, rule, item) for item in value]


def _message(policies: PolicySet, rule: str, item: Any) -> Message:
    if isinstance(item, str):
        return item, item, {}
    if isinstance(item, dict) and isinstance(item.get("msg"), str):
        return item, item["msg"], {k: v for k, v in item.items() if k not in ("msg", "_loc")}
    file, line = _rule_head(policies, rule)
    raise PolicyError(
        f"`{rule}` gave {json.dumps(item)}: a message must be a string or an object with a string `msg`",
        file=file, line=line, col=1 if line else 0,
    )


def _shape_error(policies: PolicySet, rule: str, value: Any) -> PolicyError:
    file, line = _rule_head(policies, rule)
    if isinstance(value, dict):
        reason = (f"`{rule}[...]` makes a partial object, not a set of messages (Rego v0 syntax, which conftest "
                  f"refuses by default): write `{rule} contains msg if {{ ... }}`")
    else:
        reason = (f"`{rule}` is {json.dumps(value)}, not a set of messages, so it could never fail: write "
                  f"`{rule} contains msg if {{ ... }}`")
    return PolicyError(reason, file=file, line=line, col=1 if line else 0)


def _rule_head(policies: PolicySet, rule: str) -> tuple[str, int]:
    """Where a rule of package main is written (for messages only): its first head at a line start."""
    head = re.compile(rf"^[ \t]*{re.escape(rule)}\b", re.MULTILINE)
    for f in policies.files:
        if f.in_namespace and (found := head.search(f.source)):
            return f.path, f.source.count("\n", 0, found.start()) + 1
    return ", ".join(policies.paths), 0


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _attribute(
    session: _Session, views: Mapping[str, tuple[str, list[PolicyFile]]], rules: list[str]
) -> dict[str, dict[str, list[str]]]:
    """rule → message → the files that give it, for rules several files define: one more query, of every
    file's view (prints discarded). Empty when the views cannot run."""
    if not rules or not views:
        return {}
    try:
        values = session.query(_views_query(views), [])
    except PolicyError:
        return {}
    out: dict[str, dict[str, list[str]]] = {rule: {} for rule in rules}
    for path, (package, _) in views.items():
        mine = values.get(package) or {}
        for rule in rules:
            for item in mine.get(rule) or []:
                out[rule].setdefault(_key(item), []).append(path)
    return out


def _givers(givers: Mapping[str, Mapping[str, list[str]]], rule: str, value: Any, files: list[str]) -> list[str]:
    # A message no file gives on its own needs the rules of several files together: name every file defining it.
    return givers.get(rule, {}).get(_key(value)) or files


# --- the engine ---------------------------------------------------------------------------------------


class _Session:
    """Policy files and an input loaded into one rego-cpp interpreter, to ask one query or several."""

    def __init__(self, files: Sequence[PolicyFile], document: Mapping[str, Any]) -> None:
        self.files = files
        self.interpreter = regopy.Interpreter()
        self.interpreter.log_level = regopy.LogLevel.NONE  # errors are reported by us, not printed by rego-cpp
        for f in files:
            try:
                self.interpreter.add_module(f.path, f.source)
            except regopy.RegoError as e:
                raise _syntax_error(str(e), f) from None
        # As JSON text, parsed by rego-cpp: values built through regopy.Input break json.marshal on arrays.
        # This is most of the time a big plan takes (about 2.5 s a MB of plan JSON on this machine).
        self.interpreter.set_input_term(json.dumps(document, ensure_ascii=False))

    def query(self, query: str, prints: list[str] | None = None) -> dict[str, Any]:
        """The value of `query` ({} when undefined); what `print()` wrote is added to `prints`."""
        with _standard_output() as printed:
            try:
                output = self.interpreter.query(query)
            except json.JSONDecodeError as e:  # regopy reads every answer as JSON: an error answer is not
                raise _evaluation_error(e.doc, self.files) from None
        if prints is not None:
            prints.extend(line for line in printed.text.splitlines() if line)
        if not output.ok():
            raise PolicyError(f"running the policies failed ({NO_DETAIL})", file=_names(self.files))
        if str(output) == "undefined":
            return {}
        answer = json.loads(str(output))
        return dict(answer.get("expressions", [{}])[0] or {})


# rego-cpp answers `<error>` and nothing more for some failures; the usual cause in conftest-style policies:
NO_DETAIL = ("rego-cpp gives no detail; a common cause is a rule given two different values, such as two "
             "`x := ...` bodies that both apply")


def _names(files: Sequence[PolicyFile]) -> str:
    return ", ".join(dict.fromkeys(f.path for f in files))


@dataclass
class _Printed:
    text: str = ""


_LIBC = ctypes.CDLL(None)


@contextlib.contextmanager
def _standard_output() -> Iterator[_Printed]:
    """Capture what rego-cpp's `print()` writes to file descriptor 1 (not Python's sys.stdout)."""
    printed = _Printed()
    sys.stdout.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(1)
        os.dup2(sink.fileno(), 1)
        try:
            yield printed
        finally:
            _LIBC.fflush(None)
            os.dup2(saved, 1)
            os.close(saved)
            sink.seek(0)
            printed.text = sink.read().decode("utf-8", errors="replace")


@contextlib.contextmanager
def _without_environment() -> Iterator[None]:
    """The process's environment emptied while a query runs (rego-cpp reads it for `opa.runtime().env`),
    then put back as it was."""
    saved = dict(os.environ)
    os.environ.clear()
    try:
        yield
    finally:
        os.environ.clear()  # rego-cpp sets COLUMNS and LINES on its way: not ours to keep
        os.environ.update(saved)


# --- rego-cpp's errors -------------------------------------------------------------------------------

# `(error 14:dir/a b|c.rego|57|2 (errormsg 27:Invalid assignment operator) ...`: lengths are byte counts,
# the offset is a byte offset into the module's source.
_ERROR = re.compile(rb"\(error (\d+):")
_POSITION = re.compile(rb"\|(\d+)\|(\d+)")
_ERRORMSG = re.compile(rb"\(errormsg (\d+):")


def _counted(data: bytes, match: re.Match[bytes]) -> bytes:
    start = match.end()
    return data[start:start + int(match.group(1))]


def _syntax_error(text: str, policy: PolicyFile) -> PolicyError:
    """The first error rego-cpp reports, at the file, line and column it names."""
    data = text.encode("utf-8")
    error = _ERROR.search(data)
    message = _ERRORMSG.search(data)
    reason = _counted(data, message).decode("utf-8", errors="replace") if message else "invalid Rego"
    if error is None:
        return PolicyError(f"Rego syntax error: {reason}", file=policy.path)
    position = _POSITION.match(data, error.end() + int(error.group(1)))
    offset = int(position.group(1)) if position else 0
    line, col = _line_col(policy.source, offset)
    return PolicyError(f"Rego syntax error: {reason}", file=policy.path, line=line, col=col)


def _line_col(source: str, offset: int) -> tuple[int, int]:
    before = source.encode("utf-8")[:offset].decode("utf-8", errors="replace")
    line = before.count("\n") + 1
    return line, len(before) - (before.rfind("\n") + 1) + 1


def _evaluation_error(text: str, files: Sequence[PolicyFile]) -> PolicyError:
    """An error rego-cpp returns as its answer (an unknown function, a failing built-in): located by name."""
    data = text.encode("utf-8")
    message = _ERRORMSG.search(data)
    reason = _counted(data, message).decode("utf-8", errors="replace") if message else text.strip()
    missing = re.match(r"Function not found: ([\w.]+)", reason)
    if missing:
        call = re.compile(rf"(?<![\w.]){re.escape(missing.group(1))}\s*\(")
        for f in files:
            if found := call.search(f.source):
                line, col = _line_col(f.source, len(f.source[: found.start()].encode("utf-8")))
                return PolicyError(f"unknown function {missing.group(1)}()", file=f.path, line=line, col=col)
    return PolicyError(f"running the policies failed: {reason}", file=_names(files))


__all__ = [
    "NAMESPACE",
    "Outcome",
    "PolicyFile",
    "PolicyReport",
    "PolicyResult",
    "PolicySet",
    "discover",
    "evaluate",
    "load",
]
