"""Property tests: whatever the bytes, `load` + `check` raise only TenancyError and never leak a secret.

About 2,100 random mutations of valid manifests (text edits, structural edits of the parsed documents,
raw bytes, truncation), split over three tests.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider.errors import Finding, TenancyError
from provider.manifests import load
from provider.rules import check

from .helpers import BASE, globex, replace

ENV_SECRET = "Zq9!marker-ENV-7xK#p2"
FILE_SECRET = "Wv3$marker-FILE-8mJ&r5"
WEAK_SECRET = "weakmark1"
SECRETS = (ENV_SECRET, FILE_SECRET, WEAK_SECRET)
ENV = {"ADA_PW": ENV_SECRET, "WEAK_PW": WEAK_SECRET, "GINA_PW": ENV_SECRET}

SEEDS = [
    replace(BASE, "email: bob@acme.example\n", "email: bob@acme.example\n  password: {fromFile: secret.txt}\n"),
    BASE + globex().replace("role: administrator\n", "role: administrator\n  password: {fromEnv: GINA_PW}\n"),
    replace(BASE, "email: carol@acme.example\n", "email: carol@acme.example\n  password: {fromEnv: WEAK_PW}\n")
    + globex("  parent: acme\n"),
]
INTERESTING = [
    "secret.txt",
    "ADA_PW",
    "WEAK_PW",
    "../secret.txt",
    "/etc/passwd",
    "acme",
    "ada",
    "User",
    "spec",
    "fromFile",
    "fromEnv",
    "password",
    "&a",
    "*a",
    "<<",
    "!!python/object:os.system",
    "---",
    "\t",
    ": ",
    "- ",
]
YAML_CHARS = st.sampled_from(list(":-[]{},&*!|>'\"%@`#?\t\n \\") + ["\x00", "\x07", "\ufeff", "é", "\u2028"])
TEXT = st.one_of(st.sampled_from(INTERESTING), st.text(max_size=12), st.text(YAML_CHARS, max_size=6))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)

# Password sources: resolvable, weak, unset, outside the manifests' directory, missing.
SOURCES = [
    {"fromEnv": "ADA_PW"},
    {"fromEnv": "WEAK_PW"},
    {"fromEnv": "UNSET_PW"},
    {"fromFile": "secret.txt"},
    {"fromFile": "../secret.txt"},
    {"fromFile": "/etc/hostname"},
    {"fromFile": "missing.txt"},
]
# Values that keep a document well-formed but may break a cross-resource rule (a reference, a domain, a
# quota, a password source), so that the rules, not only the loader, meet the mutations.
PLAUSIBLE_VALUES: list[Any] = [
    "acme",
    "globex",
    "ada",
    "bob",
    "gina",
    "zed",
    "acme.example",
    "globex.example",
    "other.example",
    "ada@acme.example",
    "x@other.example",
    "administrator",
    "external",
    "legal-representative",
    "free",
    "pro",
    "starter",
    "standard",
    "signatures-google-workspace",
    "exchange-on-premises",
    "UTF-16",
    "tenancy/stack",
    0,
    1,
    3,
    5,
    100,
    True,
    False,
    None,
    ["ada", "zed"],
    ["acme.example", "acme.example"],
    *SOURCES,
]
PLAUSIBLE = st.sampled_from(PLAUSIBLE_VALUES)
FIELD_VALUES: dict[Any, list[Any]] = {
    "organization": ["acme", "globex", "zed"],
    "parent": ["acme", "globex", "zed", None],
    "user": ["ada", "bob", "zed"],
    "leader": ["ada", "carol", "zed"],
    "members": [["ada", "zed"], ["bob"], []],
    "domains": [["acme.example", "acme.example"], ["globex.example"], []],
    "email": ["ada@acme.example", "x@other.example", "gina@acme.example", "BOB@acme.example"],
    "address": ["ada@acme.example", "x@other.example", "info@acme.example"],
    "domain": ["acme.example", "other.example", "globex.example"],
    "maxAddresses": [1, 3, 4, 5, 100],
    "offer": ["starter", "standard"],
    "role": ["administrator", "external", "legal-representative", "collaborator"],
    "plan": ["free", "entry", "pro"],
    "type": ["standard", "custom"],
    "charset": ["UTF-8", "UTF-16"],
    "displayName": ["Acme", "Globex"],
    "labels": [{"tenancy/stack": "x"}, {"team": "a"}],
    "billingRights": [True, False],
    "customerCanEditSignatures": [True, False],
    "signatureModes": [["exchange-on-premises"], ["server-side"]],
    "product": ["signatures-google-workspace", "signatures-microsoft-365"],
    "password": SOURCES,
    "name": ["acme", "globex", "ada", "bob", "sales"],
    "apiVersion": ["tenancy/v1"],
}
VALUE = st.one_of(PLAUSIBLE, PLAUSIBLE, PLAUSIBLE, JSON)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("prop")
    (directory / "secret.txt").write_text(FILE_SECRET + "\n")
    (directory / "tenancy.yaml").write_text("stack: prop\n")
    return directory


def exercise(directory: Path, data: bytes) -> None:
    path = directory / "m.yaml"
    path.write_bytes(data)
    findings: list[Finding] = []
    try:
        findings = check(load([directory]), env=ENV)
        messages = [str(f) for f in findings]
    except TenancyError as e:  # the only kind of exception allowed out
        findings = list(getattr(e, "findings", []))
        messages = [str(e)] + [str(f) for f in findings]
    for f in findings:
        assert f.file in (str(path), str(directory / "tenancy.yaml")) and f.line >= 1 and f.col >= 1, str(f)
        json.dumps(f.as_dict())
    for message in messages:
        for secret in SECRETS:
            assert secret not in message, message


SETTINGS = settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_text_edits(workdir: Path, seed: str, data: st.DataObject) -> None:
    text = seed
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        if action == "truncate":
            text = text[:at]
        elif action == "delete":
            text = text[:at] + text[at + data.draw(st.integers(1, 20)) :]
        else:
            piece = data.draw(TEXT)
            text = text[:at] + piece + text[at + (len(piece) if action == "replace" else 0) :]
    exercise(workdir, text.encode("utf-8", "surrogatepass"))


def _containers(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if isinstance(value, (dict, list)) and value else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        out += _containers(child, path + (key,))
    return out


@SETTINGS
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_structural_edits(workdir: Path, seed: str, data: st.DataObject) -> None:
    documents = [d for d in yaml.safe_load_all(seed) if d]
    for _ in range(data.draw(st.integers(1, 2))):
        document = data.draw(st.sampled_from(documents))
        path = data.draw(st.sampled_from(_containers(document)))
        parent = document
        for step in path:
            parent = parent[step]
        key = data.draw(st.sampled_from(list(parent.keys()) if isinstance(parent, dict) else list(range(len(parent)))))
        action = data.draw(st.sampled_from(["delete", "retype", "rename", "add"] + ["swap"] * 6))
        pool = (
            [parent[key]]
            if key == "kind"
            else FIELD_VALUES.get(key) or [v for v in PLAUSIBLE_VALUES if type(v) is type(parent[key])]
        )
        if action == "swap" and pool:  # a value this field may hold: the document stays valid, rules get to judge
            parent[key] = copy.deepcopy(data.draw(st.sampled_from(pool)))  # never alias the shared pools
        elif action == "delete":
            del parent[key]
        elif action == "retype":
            parent[key] = copy.deepcopy(data.draw(VALUE))
        elif action == "rename" and isinstance(parent, dict):
            parent[data.draw(TEXT)] = parent.pop(key)
        elif isinstance(parent, dict):
            parent[data.draw(TEXT)] = copy.deepcopy(data.draw(VALUE))
        else:
            parent.append(copy.deepcopy(data.draw(VALUE)))
    text = yaml.safe_dump_all(documents, allow_unicode=True, sort_keys=False)
    exercise(workdir, text.encode("utf-8", "surrogatepass"))


@SETTINGS
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_random_bytes(workdir: Path, seed: str, data: st.DataObject) -> None:
    raw = seed.encode()
    at = data.draw(st.integers(0, len(raw)))
    noise = data.draw(st.binary(min_size=1, max_size=40))
    cut = data.draw(st.integers(at, len(raw)))
    exercise(workdir, raw[:at] + noise + raw[cut:])
