"""Secrets: a marker password given through `fromEnv` and through `fromFile` never shows up anywhere.

The full flow (validate, plan in every format, a saved plan, apply, a rotation, import, and refused
requests that carry a password) runs against `tenancy serve --log-level debug` on SQLite and on PostgreSQL,
with the CLI under TENANCY_DEBUG=1. Then every place a secret could leak is searched for every marker: all
CLI output, the saved plan, the imported manifests, the server's log, every API response (including
422s for invalid documents that carried a password, and idempotent replays), the SQLite files (database,
WAL, shared memory) or a `pg_dump` of the PostgreSQL database. The database may hold only a slow salted
hash: not the marker, nor its unsalted SHA-256/SHA-1/MD5.

`fromFile` cannot leave the manifest directory (`../`, an absolute path, a symbolic link to a file or a
directory outside) unless `--allow-secret-outside` is given to plan/apply.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tenancy_kinds.passwords import weakness
from tests.faults.harness import Result, cli_env, tenancy
from tests.builders import document
from tests.support import Server, new_pg_database, start_server

TIME_LIMIT_S = 120.0


def marker(tag: str) -> str:
    """A strong password that is easy to grep for and unique to this run."""
    while True:
        value = f"Mk{tag}!{secrets.token_hex(6)}#Zq"
        if weakness(value) is None:
            return value


def write_manifests(directory: Path, file_marker: str, version: int = 1) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tenancy.yaml").write_text("stack: sec\n")
    (directory / "secrets").mkdir(exist_ok=True)
    (directory / "secrets" / "file.pw").write_text(file_marker + "\n")
    docs = [
        document("Organization", "sec", None, displayName="Sec", plan="entry", domains=["sec.example"]),
        document("User", "envuser", "sec", email="envuser@sec.example", displayName="Env", role="administrator",
             password={"fromEnv": "SEC_PW_ENV"}, passwordVersion=version),
        document("User", "fileuser", "sec", email="fileuser@sec.example", displayName="File",
             password={"fromFile": "secrets/file.pw"}, passwordVersion=version),
    ]
    (directory / "sec.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))


class Evidence:
    """Everything produced during a flow, to be searched for markers."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.blobs: dict[str, bytes] = {}

    def cli(self, label: str, result: Result) -> Result:
        self.texts[f"cli {label}"] = result.both
        return result

    def response(self, label: str, response: requests.Response) -> requests.Response:
        self.texts[f"api {label}"] = f"{response.status_code} {dict(response.headers)} {response.text}"
        return response

    def files(self, root: Path) -> None:
        for path in root.rglob("*"):
            if path.is_file() and "secrets" not in path.parts:  # the password file itself holds the marker
                self.blobs[f"file {path.relative_to(root)}"] = path.read_bytes()

    def leaks(self, markers: list[str]) -> list[str]:
        forms: dict[str, bytes] = {}
        for m in markers:
            raw = m.encode()
            forms[m] = raw
            for name in ("sha256", "sha1", "md5"):
                digest = hashlib.new(name, raw).hexdigest()
                forms[f"{name}({m})"] = digest.encode()
        found = []
        for where, text in self.texts.items():
            found += [f"{what} in {where}" for what, form in forms.items() if form.decode() in text]
        for where, blob in self.blobs.items():
            found += [f"{what} in {where}" for what, form in forms.items() if form in blob]
        return found


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    db = f"sqlite:///{tmp_path / 'tenancy.db'}" if request.param == "sqlite" else new_pg_database("tenancy_secrets")
    with start_server(db, extra_args=("--log-level", "debug")) as server:
        yield server


def _database_evidence(evidence: Evidence, server: Server, tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from tenancy_backend.db import create_db_engine, resources

    engine = create_db_engine(server.db_url)
    with engine.connect() as conn:  # the control: the passwords were stored, as hashes
        hashed = conn.execute(select(func.count()).where(resources.c.password_hash.is_not(None))).scalar_one()
    engine.dispose()
    assert hashed == 3, hashed
    if server.db_url.startswith("sqlite:///"):
        db = Path(server.db_url.removeprefix("sqlite:///"))
        for path in db.parent.glob(db.name + "*"):
            evidence.blobs[f"sqlite {path.name}"] = path.read_bytes()
        assert f"sqlite {db.name}" in evidence.blobs
        return
    dump = subprocess.run(["pg_dump", "--no-owner", server.db_url], capture_output=True, timeout=60)
    assert dump.returncode == 0, dump.stderr.decode()
    evidence.blobs["pg_dump"] = dump.stdout
    assert b"password_hash" in dump.stdout


def test_markers_never_leak(backend: Server, tmp_path: Path) -> None:
    server, evidence = backend, Evidence()
    env_marker, file_marker = marker("env"), marker("file")
    rotated_env, rotated_file = marker("env2"), marker("file2")
    api_marker, weak_marker = marker("api"), "zzzzzz" + secrets.token_hex(4)
    markers = [env_marker, file_marker, rotated_env, rotated_file, api_marker, weak_marker]
    m = tmp_path / "m"
    write_manifests(m, file_marker)
    env = cli_env(server.url, server.token, SEC_PW_ENV=env_marker, TENANCY_DEBUG="1")
    def run(label: str, *args: str, e: dict[str, str] = env, rc: int = 0) -> Result:
        result = evidence.cli(label, tenancy(list(args), e, tmp_path))
        assert result.rc == rc, f"{label}: exit {result.rc}, expected {rc}:\n{result.both[-3000:]}"
        return result

    run("validate", "validate", "m")
    run("validate json", "validate", "m", "--json")
    assert "(sensitive)" in run("plan", "plan", "m").out
    run("plan json", "plan", "m", "--json")
    run("plan markdown", "plan", "m", "--format", "markdown")
    run("plan out", "plan", "m", "--out", "saved.plan")
    run("apply saved", "apply", "--plan", "saved.plan", "--yes")
    run("plan empty", "plan", "m", "--detailed-exitcode")
    write_manifests(m, rotated_file, version=2)
    rotated = {**env, "SEC_PW_ENV": rotated_env}
    assert "(sensitive)" in run("plan rotation", "plan", "m", e=rotated).out
    run("apply rotation", "apply", "m", "--yes", e=rotated)
    run("import", "import", "--organization", "sec", "--out", "imported")
    # Refusals that involve the secret: a weak one, and one shared between two organizations.
    weak = tmp_path / "weak"
    write_manifests(weak, file_marker)
    assert "weak" in run("validate weak", "validate", "weak", e={**env, "SEC_PW_ENV": weak_marker}, rc=1).out
    run("apply weak", "apply", "weak", "--yes", e={**env, "SEC_PW_ENV": weak_marker}, rc=1)
    shared = tmp_path / "shared"
    write_manifests(shared, env_marker)  # the file holds the same password as the variable: one org, allowed
    other = [document("Organization", "sec2", None, displayName="Sec2", plan="entry", domains=["sec2.example"]),
             document("User", "twin", "sec2", email="twin@sec2.example", displayName="Twin", role="administrator",
                  password={"fromEnv": "SEC_PW_ENV"})]
    (shared / "sec2.yaml").write_text(yaml.safe_dump_all(other))
    assert "same password" in run("validate shared", "validate", "shared", rc=1).out

    _api_refusals(server, evidence, api_marker, weak_marker)
    evidence.texts["server log"] = server.output()
    assert "DEBUG" in evidence.texts["server log"]
    evidence.files(tmp_path)
    _database_evidence(evidence, server, tmp_path)
    leaks = evidence.leaks(markers)
    assert not leaks, leaks[:10]
    print(f"\nsecrets ({server.db_url.split(':')[0]}): {len(markers)} markers, {len(evidence.texts)} outputs and "
          f"responses, {len(evidence.blobs)} files/dumps ({sum(map(len, evidence.blobs.values())) // 1024} KiB) "
          "searched: 0 occurrences")


def _api_refusals(server: Server, evidence: Evidence, api_marker: str, weak_marker: str) -> None:
    url, headers = server.url + "/v1/organizations/sec/users", server.headers()

    def post(label: str, body: Any, status: int, **extra: str) -> requests.Response:
        response = requests.post(url, json=body, headers={**headers, **extra}, timeout=30)
        assert response.status_code == status, (label, response.text)
        return evidence.response(label, response)

    user = document("User", "apiuser", "sec", email="apiuser@sec.example", displayName="Api", password=api_marker)
    post("bad email", {**user, "spec": {**user["spec"], "email": "not an address"}}, 422)
    post("password as object", {**user, "spec": {**user["spec"], "password": {"value": api_marker}}}, 422)
    post("password too long", {**user, "spec": {**user["spec"], "password": api_marker * 200}}, 422)
    post("weak password", {**user, "spec": {**user["spec"], "password": weak_marker}}, 422)
    post("unknown field beside it", {**user, "spec": {**user["spec"], "pasword": api_marker}}, 422)
    post("create", user, 201, **{"Idempotency-Key": "sec-1"})
    post("replay", user, 201, **{"Idempotency-Key": "sec-1"})
    post("conflict", user, 409)
    read = evidence.response("get", requests.get(url + "/apiuser", headers=headers, timeout=30))
    assert read.status_code == 200 and "password" not in read.json()["spec"]
    evidence.response("export", requests.get(server.url + "/v1/export", headers=headers, timeout=30))
    changes = {"operations": [
        {"op": "update", "kind": "User", "organization": "sec", "name": "apiuser",
         "document": {**user, "spec": {**user["spec"], "password": api_marker[::-1], "passwordVersion": 2}}},
        {"op": "create", "kind": "User", "organization": "sec", "name": "apiuser"},
    ]}
    refused = requests.post(server.url + "/v1/changesets", json=changes, headers=headers, timeout=30)
    assert refused.status_code == 422, refused.text
    evidence.response("changeset refused", refused)


def _outside_manifests(tmp_path: Path, source: dict[str, str]) -> Path:
    m = tmp_path / "m"
    m.mkdir(parents=True, exist_ok=True)
    docs = [
        document("Organization", "out", None, displayName="Out", plan="entry", domains=["out.example"]),
        document("User", "admin", "out", email="admin@out.example", displayName="Admin", role="administrator",
             password=source),
    ]
    (m / "out.yaml").write_text(yaml.safe_dump_all(docs))
    return m


ESCAPES = {
    "dot-dot": "../elsewhere/pw",
    "absolute": None,  # filled in: the absolute path of the file outside
    "symlink-to-file": "link-pw",
    "symlink-to-directory": "linked/pw",
}


def test_from_file_stays_in_the_manifest_directory(tmp_path: Path) -> None:
    """Each way out is refused by validate and apply, naming the source but never its content;
    `--allow-secret-outside` lets apply read it."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    outputs, refused = [], []
    values = []
    for how, source in ESCAPES.items():
        value = marker("out")
        values.append(value)
        (outside / f"pw-{how}").write_text(value + "\n")
        case = tmp_path / how
        m = case / "m"
        m.mkdir(parents=True)
        if how == "symlink-to-file":
            os.symlink(outside / f"pw-{how}", m / "link-pw")
        if how == "symlink-to-directory":
            (outside / how).mkdir()
            (outside / how / "pw").write_text(value + "\n")
            os.symlink(outside / how, m / "linked")
        if how == "dot-dot":
            (case / "elsewhere").mkdir()
            (case / "elsewhere" / "pw").write_text(value + "\n")
        _outside_manifests(case, {"fromFile": source or str(outside / f"pw-{how}")})
        env = cli_env(f"sqlite:///{case / 'tenancy.db'}", TENANCY_DEBUG="1")
        for args in (["validate", "m"], ["apply", "m", "--yes"]):  # (plan prepares exactly as apply does)
            result = tenancy(args, env, case)
            outputs.append(result.both)
            assert result.rc == 1, (how, args, result.both)
            assert "outside the manifest directory" in result.both or "absolute path" in result.both, result.both
            assert "Traceback" not in result.both
        refused.append(how)
        allowed = tenancy(["apply", "m", "--yes", "--allow-secret-outside"], env, case)
        outputs.append(allowed.both)
        assert allowed.rc == 0, (how, allowed.both)
    assert not [o for o in outputs for v in values if v in o]
    print(f"\nfromFile: {', '.join(refused)}: refused by validate and apply; allowed with --allow-secret-outside")
