"""`tenancy apply --atomic` that fails half-way leaves the backend exactly as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from provider.connect import connect
from tenancy_kinds import ResourceKey
from tests.builders import org, user

REPO = Path(__file__).resolve().parents[2]

MANIFESTS = """\
apiVersion: tenancy/v1
kind: Organization
metadata: {name: acme}
spec: {displayName: Acme, plan: pro, domains: [acme.example]}
---
apiVersion: tenancy/v1
kind: MailboxQuota
metadata: {name: main, organization: acme}
spec: {domain: acme.example, maxAddresses: 10}
---
apiVersion: tenancy/v1
kind: User
metadata: {name: admin, organization: acme}
spec: {email: admin@acme.example, displayName: Admin, role: administrator}
---
apiVersion: tenancy/v1
kind: User
metadata: {name: alice, organization: acme}
spec: {email: alice@acme.example, displayName: Alice, password: {fromEnv: ALICE_PASSWORD}}
"""
PASSWORD = "Wk5%tYp8!dGe3-Nv"


def _state(db: str) -> list[dict]:
    client = connect(db)
    try:
        return sorted(
            client.export(), key=lambda d: (d["kind"], d["metadata"].get("organization", ""), d["metadata"]["name"])
        )
    finally:
        client.close()


def test_atomic_apply_that_fails_half_way_changes_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'tenancy.db'}"
    # A user of another organization already has alice's password: only the backend can know (it never
    # shows passwords), so the plan is valid and the changeset fails at its fourth operation.
    client = connect(db)
    try:
        client.create(org("other", plan="pro"))
        client.create(user("other", "guest", role="administrator", password=PASSWORD))
    finally:
        client.close()
    before = _state(db)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "acme.yaml").write_text(MANIFESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
    env.update(PYTHONPATH=str(REPO), NO_COLOR="1", ALICE_PASSWORD=PASSWORD)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "provider.cli",
            "apply",
            str(tmp_path / "m"),
            "--atomic",
            "--yes",
            "--backend",
            db,
            "--stack",
            "s",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Plan: 4 to create" in run.stdout
    assert "User acme/alice" in run.stdout + run.stderr
    assert "already used by a user of another organization" in run.stdout + run.stderr
    assert PASSWORD not in run.stdout + run.stderr
    assert _state(db) == before
    client = connect(db)
    try:
        assert client.get(ResourceKey("Organization", "", "acme")) is None
    finally:
        client.close()
