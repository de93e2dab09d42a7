"""An identity provider's day, in plain HTTP against `tenancy serve`, while the platform team's stack owns
the tenant; after each step the `tenancy` CLI (import, plan) sees what the directory did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.scim.conftest import PATCH_SCHEMA, USER_SCHEMA, Org
from tests.support import REPO, Server, create_token

MANIFESTS = """\
apiVersion: tenancy/v1
kind: Organization
metadata: {name: idp}
spec: {displayName: IdP Corp, plan: pro, domains: [idp.example]}
---
apiVersion: tenancy/v1
kind: User
metadata: {name: root, organization: idp}
spec: {email: root@idp.example, displayName: Root Admin, role: administrator}
---
apiVersion: tenancy/v1
kind: Team
metadata: {name: sales, organization: idp}
spec: {displayName: Sales, members: [root]}
"""


@dataclass
class Cli:
    server: Server
    cwd: Path

    def __call__(self, *args: str, stack: str | None = "platform") -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
        env.update(TENANCY_BACKEND=self.server.url, TENANCY_TOKEN=self.server.token, NO_COLOR="1",
                   PYTHONPATH=str(REPO), **({"TENANCY_STACK": stack} if stack else {}))
        return subprocess.run([sys.executable, "-m", "provider.cli", *args], cwd=self.cwd, env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    def imported(self) -> dict[str, dict[str, Any]]:
        """`tenancy import --organization idp`: the users it writes, by name."""
        done = self("import", "--organization", "idp", "--out", "imported")
        assert done.returncode == 0, done.stderr
        documents = yaml.safe_load_all((self.cwd / "imported" / "idp.yaml").read_text())
        return {d["metadata"]["name"]: d for d in documents if d and d["kind"] == "User"}


def test_provision_suspend_group_ungroup_deprovision(sqlite_server: Server, tmp_path: Path) -> None:
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "idp.yaml").write_text(MANIFESTS)
    cli = Cli(sqlite_server, tmp_path)
    applied = cli("apply", "tenants", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    idp = Org(sqlite_server, "idp", "idp.example", create_token(sqlite_server.db_url, "idp"))

    # The directory looks the person up by userName, finds nobody, and creates them.
    looked_up = idp.scim("GET", '/Users?filter=userName eq "Ada@idp.example"')
    assert looked_up.status_code == 200 and looked_up.json()["totalResults"] == 0
    ada = idp.user("Ada@idp.example", name={"formatted": "Ada Lovelace"}, externalId="00u-ada",
                   emails=[{"value": "ada@idp.example", "type": "work", "primary": True}], active=True)
    assert idp.scim("GET", '/Users?filter=userName eq "ada@IDP.example"').json()["totalResults"] == 1
    users = cli.imported()
    assert users["ada"]["spec"] == {"email": "ada@idp.example", "displayName": "Ada Lovelace",
                                    "username": "Ada@idp.example"}
    assert "labels" not in users["ada"]["metadata"]  # no stack owns it
    replanned = cli("plan", "imported", "--detailed-exitcode", stack=None)
    assert replanned.returncode == 0, replanned.stdout + replanned.stderr  # what import wrote plans empty
    assert cli("plan", "tenants", "--detailed-exitcode").returncode == 0  # and the platform's plan keeps it

    # Suspended: the CLI sees active false.
    suspend = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    suspended = idp.scim("PATCH", f"/Users/{ada['id']}", suspend)
    assert suspended.status_code == 200 and suspended.json()["active"] is False
    assert cli.imported()["ada"]["spec"]["active"] is False

    # Added to the platform's team: drift in the stack's next plan.
    [sales] = idp.scim("GET", '/Groups?filter=displayName eq "Sales"').json()["Resources"]
    add = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "path": "members", "value": [{"value": ada["id"]}]}]}
    assert idp.scim("PATCH", f"/Groups/{sales['id']}", add).status_code == 200
    drift = cli("plan", "tenants", "--detailed-exitcode", "--json")
    assert drift.returncode == 2, drift.stdout + drift.stderr
    [change] = json.loads(drift.stdout)["operations"]
    assert (change["action"], change["kind"], change["name"]) == ("update", "Team", "sales")
    assert [(c["path"], c["before"], c["after"]) for c in change["changes"]] == [
        ("spec.members", ["ada", "root"], ["root"])
    ]

    # Removed from it by a filter path: no drift left.
    remove = {"schemas": [PATCH_SCHEMA],
              "Operations": [{"op": "remove", "path": f'members[value eq "{ada["id"]}"]'}]}
    ungrouped = idp.scim("PATCH", f"/Groups/{sales['id']}", remove)
    assert ungrouped.status_code == 200 and [m["value"] for m in ungrouped.json()["members"]] != [ada["id"]]
    assert cli("plan", "tenants", "--detailed-exitcode").returncode == 0

    # Deprovisioned: gone for SCIM and for the CLI.
    assert idp.scim("DELETE", f"/Users/{ada['id']}").status_code == 204
    assert idp.scim("GET", f"/Users/{ada['id']}").status_code == 404
    assert "ada" not in cli.imported()


def test_a_deprovisioned_member_leaves_its_teams_in_the_same_transaction(org: Org) -> None:
    ada = org.user(f"ada@{org.domain}")
    bob = org.user(f"bob@{org.domain}")
    team = org.scim("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                        "displayName": "Ops", "members": [{"value": ada["id"]}, {"value": bob["id"]}]})
    assert team.status_code == 201, team.text
    assert org.scim("DELETE", f"/Users/{ada['id']}").status_code == 204
    left = org.scim("GET", f"/Groups/{team.json()['id']}").json()
    assert [m["value"] for m in left["members"]] == [bob["id"]]
    assert sorted(org.users()) == ["bob"]


def test_user_documents_carry_what_scim_wrote(org: Org) -> None:
    created = org.user("Grace.Hopper", emails=[{"value": f"grace@{org.domain}"}], externalId="ext-1",
                       password="Vq8#rLm2!xTz9pKz")
    assert set(created) >= {"id", "meta", "userName", "displayName", "active", "emails"} and "password" not in created
    [grace] = org.users().values()
    assert grace["metadata"]["name"] == "grace-hopper"
    assert grace["metadata"]["uid"] == created["id"]
    assert grace["spec"]["username"] == "Grace.Hopper" and grace["spec"]["displayName"] == "Grace.Hopper"
    assert grace["status"]["directory"] == {"externalId": "ext-1", "cleared": ["name"]}
    assert created["meta"]["version"] == f'"{grace["metadata"]["resourceVersion"]}"'
    body = {"schemas": [USER_SCHEMA], "userName": "grace.hopper", "emails": [{"value": f"grace@{org.domain}"}]}
    again = org.scim("POST", "/Users", body)
    assert again.status_code == 409 and again.json()["scimType"] == "uniqueness", again.text
