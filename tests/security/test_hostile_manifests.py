"""Hostile manifests: generated garbage gives clear errors, YAML bombs are refused fast in bounded memory.

- hypothesis generates manifests three ways: raw text over YAML's syntax characters (the parser's edge
  cases), structurally random documents (wrong types, unknown kinds and fields, hostile strings, huge
  numbers, deep values), and valid documents with one field replaced by a random value (the validator's
  error paths). Loading and checking each must succeed or raise `ManifestError` / another `TenancyError`:
  never any other exception. 10,000 examples in CI (TENANCY_HOSTILE_EXAMPLES raises it by hand).
- the real CLI (`tenancy validate`, `tenancy plan`) on hundreds of such files answers exit 1 with
  file:line:col findings, never a traceback.
- YAML bombs (billion laughs, deep nesting, a huge scalar, an oversized file, a flood of documents, a
  self-referencing alias, a merge-key fan-out) through `tenancy validate`: refused, each in under 3 s of CPU
  time and under 200 MiB peak RSS (both from os.wait4 on the child: a loaded machine stretches wall time,
  not the work the child does).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from provider import manifests, rules
from provider.errors import TenancyError
from tenancy_kinds import KINDS
from tests.faults.harness import cli_env, env_int, tenancy

TIME_LIMIT_S = 240.0
EXAMPLES = env_int("TENANCY_HOSTILE_EXAMPLES", 10_000)
SHARES = {"text": 0.5, "structure": 0.25, "mutation": 0.25}  # the cheap ones get the larger share
BOMB_SECONDS = 3.0
BOMB_MIB = 200.0

# --- the generators -------------------------------------------------------------------------------------

YAML_TOKENS = list(":-[]{}&*!|>'\"#%@`,?~=<\\/ \n\t.") + list("abckmnsz019_") + [
    "\x00", "\x07", "\r", "\u2028", "\ufeff", "é", "\U0001f600", "---", "...", "<<", "!!python/object:os.system",
    "!!binary", "&a ", "*a", "? ", "%YAML 1.1\n", "apiVersion: tenancy/v1\n", "kind: User\n", "metadata:\n",
    "  name: x\n", "spec:\n", "organization", "tenancy/v1", "Organization", "\n  - ", ": ",
]
HOSTILE_STRINGS = [
    "", " ", "a" * 300, "../../etc/passwd", "'; DROP TABLE resources; --", "%2e%2e%2f", "\x00", "${HOME}",
    "{{ .Values }}", "<script>", "A" * 64, "-leading", "trailing-", "UPPER", "tenancy/stack", "💥", "\u202e",
    "1e400", "0x10", "~", "null", "yes", "no", "on", ".nan", "2001-01-01", "alice", "acme", "acme.example",
    "a@acme.example", "pro", "administrator", "calendars",
]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.sampled_from([0, -1, 1, 5, 2**31, 2**64, -(2**70), 1.5, float("nan"), float("inf")]),
    st.sampled_from(HOSTILE_STRINGS), st.text(max_size=12),
)
# Small values: a scalar, or a short list or mapping of scalars (cheap to draw, so that 10,000 fit in CI).
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["a", "name", "x", "1"]), SCALARS, max_size=2),
)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _dump(docs: list[Any]) -> str:
    return yaml.dump_all(docs, Dumper=_DUMPER, allow_unicode=True)


def _field_names(kind: Any) -> list[str]:
    if isinstance(kind, str) and kind in KINDS:
        return sorted(KINDS[kind].spec.model_fields) + ["bogus"]
    return ["displayName", "email", "members", "bogus"]


@st.composite
def structured(draw: st.DrawFn) -> str:
    """One document whose every part may be of the wrong type or shape."""
    kind = draw(st.sampled_from([*KINDS, "Nope", "user", None, 7]))
    metadata = draw(
        st.one_of(
            st.fixed_dictionaries(
                {"name": st.one_of(st.sampled_from(["ok", "alice", "acme"]), SCALARS)},
                optional={
                    "organization": st.one_of(st.just("acme"), SCALARS),
                    "labels": VALUES,
                    "protected": SCALARS,
                    "uid": SCALARS,
                },
            ),
            VALUES,
        )
    )
    names = _field_names(kind)
    spec = draw(st.one_of(st.dictionaries(st.sampled_from(names), VALUES, max_size=5), VALUES))
    doc: dict[Any, Any] = {
        "apiVersion": draw(st.sampled_from(["tenancy/v1", "tenancy/v2", None, 1])),
        "kind": kind,
        "metadata": metadata,
        "spec": spec,
    }
    if draw(st.booleans()):
        doc[draw(st.sampled_from(["status", "extra", "Spec"]))] = draw(VALUES)
    return _dump([doc])


VALID = """\
apiVersion: tenancy/v1
kind: Organization
metadata: {name: acme, labels: {tier: gold}}
spec:
  {displayName: Acme, plan: pro, domains: [acme.example],
   billingAddress: {name: A, street: S 1, postalCode: "1", city: C, country: DE}}
---
apiVersion: tenancy/v1
kind: User
metadata: {name: alice, organization: acme}
spec: {email: alice@acme.example, displayName: Alice, role: administrator, subscription: pro, password: {fromEnv: PW}}
---
apiVersion: tenancy/v1
kind: Team
metadata: {name: devs, organization: acme}
spec: {displayName: Devs, members: [alice], leader: alice, shares: [calendars]}
---
apiVersion: tenancy/v1
kind: MailboxQuota
metadata: {name: q, organization: acme}
spec: {domain: acme.example, maxAddresses: 10}
---
apiVersion: tenancy/v1
kind: Alias
metadata: {name: info, organization: acme}
spec: {address: info@acme.example, user: alice}
---
apiVersion: tenancy/v1
kind: CustomerSubscription
metadata: {name: sig, organization: acme}
spec:
  {product: signatures-microsoft-365, customerName: C, customerCanEditSignatures: true,
   contact: {name: N, email: n@x.example}}
"""
VALID_DOCS = list(yaml.safe_load_all(VALID))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


PATHS = [(i, path) for i, d in enumerate(VALID_DOCS) for path in _paths(d)[1:]]


def mutate(docs: list[Any], where: tuple[int, tuple[Any, ...]], action: str, value: Any) -> list[Any]:
    import copy

    docs = copy.deepcopy(docs)
    i, path = where
    target = docs[i]
    for step in path[:-1]:
        target = target[step]
    if action == "delete":
        del target[path[-1]]
    elif action == "add" and isinstance(target, dict):
        target[value if isinstance(value, str) and value else "bogus"] = value
    else:
        target[path[-1]] = value
    return docs


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """The valid documents with one field replaced by a random value, deleted, or a field added."""
    docs = mutate(
        VALID_DOCS, draw(st.sampled_from(PATHS)), draw(st.sampled_from(["replace", "delete", "add"])), draw(VALUES)
    )
    return _dump(docs)


RAW_TEXT = st.lists(st.sampled_from(YAML_TOKENS), max_size=40).map("".join)


# --- the property ---------------------------------------------------------------------------------------


def load_and_check(text: str) -> str:
    """'ok', or the name of the TenancyError raised; anything else propagates (and fails the test)."""
    try:
        manifest_set = manifests.load_text(text, file="hostile.yaml", root="/nonexistent")
        findings = rules.check(manifest_set, env={"PW": "Vq8#rLm2!xTz9pKw"})
        for f in findings:
            assert f.line >= 1 and str(f), f
        return "ok"
    except TenancyError as e:
        assert str(e), "an error without a message"
        return type(e).__name__


def _settings(share: str) -> settings:
    return settings(
        max_examples=_examples(share),
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )


def _examples(share: str) -> int:
    return max(1, int(EXAMPLES * SHARES[share]))


def _generated(name: str, share: str, strategy: st.SearchStrategy[str]) -> None:
    """Load and check `strategy`'s share of the examples; report what they came to. At least 95 % of them
    must have run: hypothesis may stop early (a strategy it finds exhausted), which would test less than
    it says."""
    outcomes: Counter[str] = Counter()

    @given(strategy)
    @_settings(share)
    def loads_or_refuses(text: str) -> None:
        outcomes[load_and_check(text)] += 1

    loads_or_refuses()
    total = sum(outcomes.values())
    print(
        f"\nhostile manifests, {name}: {total} generated, 0 unhandled errors: "
        + ", ".join(f"{outcome} {n}" for outcome, n in outcomes.most_common())
    )
    assert total >= 0.95 * _examples(share), total


def test_raw_yaml_text() -> None:
    _generated("raw YAML text", "text", RAW_TEXT)


def test_random_documents() -> None:
    _generated("random documents", "structure", structured())


def test_valid_documents_with_a_field_gone_wrong() -> None:
    _generated("valid documents with a field gone wrong", "mutation", mutated())


def test_the_unmutated_documents_are_valid() -> None:
    """The control for the mutations: the base documents load and pass every rule."""
    assert load_and_check(VALID) == "ok"


# --- through the CLI ------------------------------------------------------------------------------------


def test_the_cli_reports_hostile_files_without_a_traceback(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("TENANCY_FAULT_SEED", "7")))
    m = tmp_path / "m"
    m.mkdir()
    for i in range(300):
        (m / f"f{i:03d}.yaml").write_bytes(_sample(rng, i).encode("utf-8", "surrogatepass"))
    env = cli_env(f"sqlite:///{tmp_path / 'tenancy.db'}", TENANCY_DEBUG="1", PW="Vq8#rLm2!xTz9pKw")
    outputs = {}
    for args in (["validate", "m"], ["validate", "m", "--json"], ["plan", "m"], ["apply", "m", "--yes"]):
        result = tenancy(args, env, tmp_path, timeout=120)
        outputs[" ".join(args)] = result
        assert result.rc == 1, (args, result.both[-2000:])
        assert "Traceback" not in result.both and "internal error" not in result.both, result.both[-3000:]
    located = [
        line for line in outputs["validate m"].out.splitlines() if line.startswith("m/f") and ": error: " in line
    ]
    files = {line.split(":")[0] for line in located}
    assert len(files) > 250, outputs["validate m"].out[-2000:]
    print(f"\nCLI: 300 hostile files, {len(located)} located errors in {len(files)} files, exit 1, no traceback")


def _sample(rng: random.Random, i: int) -> str:
    """Hostile files drawn from a seeded RNG (reproducible), in the three styles of the generators above."""
    if i % 3 == 0:
        return "".join(rng.choice(YAML_TOKENS) for _ in range(rng.randint(1, 60)))
    value: Any = rng.choice([None, 7, -1, 2**70, [], {}, "x" * 300, *HOSTILE_STRINGS])
    text = _dump(mutate(VALID_DOCS, rng.choice(PATHS), rng.choice(["replace", "delete", "add"]), value))
    if i % 3 == 2:  # cut it somewhere: a syntax error at a random place
        text = text[: rng.randint(1, len(text))] + rng.choice(["[", "{", ":", "&a *b", "\t- x", "'", "\x00"])
    return text


# --- YAML bombs -----------------------------------------------------------------------------------------


def _laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels + 1):
        lines.append(f"a{n}: &a{n} [" + ",".join([f"*a{n - 1}"] * 9) + "]")
    return (
        "apiVersion: tenancy/v1\nkind: Organization\nmetadata: {name: bomb}\nspec:\n"
        + "\n".join("  " + line for line in lines)
        + "\n"
    )


# Expansion and nesting bombs: refused within BOMB_SECONDS of CPU. Merely big inputs (linear in their size, capped by
# the 10 MiB file limit) within BIG_SECONDS. All within BOMB_MIB of peak memory.
BOMBS = {
    "billion laughs (10^9 values)": lambda: _laughs(9),
    "nesting 100,000 deep (flow)": lambda: "spec: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "nesting 1,000 deep (block)": lambda: "".join("  " * i + "-\n" for i in range(1000)),
    "self-referencing alias": lambda: "a: &a [*a]\n",
    "merge-key fan-out": lambda: (
        "base: &b {"
        + ",".join(f"k{i}: {i}" for i in range(1000))
        + "}\n"
        + "".join(f"m{i}: {{<<: [*b, *b, *b, *b]}}\n" for i in range(2000))
    ),
    "9 MiB scalar": lambda: (
        "apiVersion: tenancy/v1\nkind: User\nmetadata: {name: x}\nspec: {displayName: " + "x" * (9 * 2**20) + "}\n"
    ),
    "12 MiB file": lambda: "# " + "y" * (12 * 2**20) + "\n",
}
BIG = {
    "10,000 empty documents": lambda: "---\n{}\n" * 10_000,
    "100,000 keys in one mapping": lambda: "spec:\n" + "".join(f"  k{i}: v\n" for i in range(100_000)),
}
BIG_SECONDS = 10.0


# A small launcher forks the measured command and reports os.wait4's rusage. Linux carries a process's peak
# RSS across exec from the image it forked from, so forking the CLI straight from this (big) test process
# would report the test's own memory; forked from a fresh small interpreter, the figure is the CLI's own.
# The time is the child's CPU time (user + system, its own children included): what the refusal costs,
# however busy the machine is; the wall time is reported beside it.
LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "provider.cli", *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
os.write(2, ("\\nMEASURED " + json.dumps({"rc": os.waitstatus_to_exitcode(status), "wall": time.perf_counter() - start,
    "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss})).encode())
"""


def _measured(args: list[str], cwd: Path) -> tuple[int, float, float, str]:
    """(exit code, CPU seconds, peak RSS in MiB, output) of a `tenancy` child, measured with os.wait4."""
    env = cli_env(f"sqlite:///{cwd / 'unused.db'}", PW="Vq8#rLm2!xTz9pKw")
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *args], cwd=cwd, env=env, capture_output=True, timeout=60, check=False
    )
    err = proc.stderr.decode("utf-8", "replace")
    err, _, measured = err.rpartition("\nMEASURED ")
    figures = json.loads(measured)
    out = proc.stdout.decode("utf-8", "replace") + err
    out += f"\n(wall {figures['wall']:.2f} s)"
    return figures["rc"], figures["cpu"], figures["maxrss_kib"] / 1024, out


def test_yaml_bombs_are_refused_quickly_in_bounded_memory(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(VALID)
    rc, base_s, base_mib, out = _measured(["validate", "ok.yaml"], tmp_path)
    assert rc == 0, out
    lines = [f"baseline (a valid 6-resource file): {base_s * 1000:.0f} ms CPU, {base_mib:.0f} MiB"]
    slow = []
    for label, make in [*BOMBS.items(), *BIG.items()]:
        path = tmp_path / "bomb.yaml"
        path.write_text(make())
        rc, seconds, mib, out = _measured(["validate", "bomb.yaml"], tmp_path)
        first = out.strip().splitlines()[0] if out.strip() else ""
        lines.append(f"{label}: exit {rc} in {seconds * 1000:.0f} ms CPU, peak {mib:.0f} MiB: {first[:120]}")
        assert rc == 1, (label, out[-2000:])
        assert "Traceback" not in out and "internal error" not in out, (label, out[-2000:])
        if seconds > (BOMB_SECONDS if label in BOMBS else BIG_SECONDS) or mib > BOMB_MIB:
            slow.append(lines[-1])
    print("\n" + "\n".join(lines))
    assert not slow, slow
