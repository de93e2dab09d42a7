"""Manifest texts and small helpers shared by the foundation tests."""

from __future__ import annotations

from pathlib import Path

from provider.errors import Finding, ManifestError, Severity
from provider.manifests import ManifestSet, load
from provider.rules import check

STRONG = "Vq7#rTz2!mKp9$Lw"  # passes every strength rule
OTHER_STRONG = "Hx4&nWq8@cJd2%Rb"
ENV = {"ADA_PW": STRONG}

ORG = """\
apiVersion: tenancy/v1
kind: Organization
metadata: {name: acme}
spec:
  displayName: Acme
  plan: entry
  domains: [acme.example]
"""


def user(
    name: str, org: str = "acme", domain: str = "acme.example", role: str = "collaborator", extra: str = ""
) -> str:
    return (
        f"---\napiVersion: tenancy/v1\nkind: User\nmetadata: {{name: {name}, organization: {org}}}\n"
        f"spec:\n  email: {name}@{domain}\n  displayName: {name.title()}\n  role: {role}\n{extra}"
    )


def people(
    org: str = "acme",
    domain: str = "acme.example",
    admin: str = "ada",
    names: tuple[str, ...] = ("bob", "carol", "dan", "eve"),
    admin_extra: str = "",
) -> str:
    """An administrator and four collaborators: the smallest organization that draws no warning."""
    return user(admin, org, domain, "administrator", admin_extra) + "".join(user(n, org, domain) for n in names)


REST = """\
---
apiVersion: tenancy/v1
kind: Team
metadata: {name: sales, organization: acme}
spec:
  displayName: Sales
  members: [ada, bob]
  leader: ada
---
apiVersion: tenancy/v1
kind: Alias
metadata: {name: info, organization: acme}
spec:
  address: info@acme.example
  user: bob
---
apiVersion: tenancy/v1
kind: MailboxQuota
metadata: {name: main, organization: acme}
spec:
  domain: acme.example
  offer: standard
  maxAddresses: 10
---
apiVersion: tenancy/v1
kind: CustomerSubscription
metadata: {name: sigs, organization: acme}
spec:
  product: signatures-microsoft-365
  customerName: Acme Customer
  users: 10
"""

# A clean set: every rule passes and nothing is worth a warning.
BASE = ORG + people(admin_extra="  password: {fromEnv: ADA_PW}\n") + REST


def globex(extra_org: str = "", domain: str = "globex.example") -> str:
    """A second clean organization."""
    return (
        f"---\napiVersion: tenancy/v1\nkind: Organization\nmetadata: {{name: globex}}\n"
        f"spec:\n  displayName: Globex\n  plan: pro\n  domains: [{domain}]\n{extra_org}"
        + people("globex", domain, "gina", ("hal", "ivy", "jon", "kim"))
    )


def replace(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line_of(text: str, marker: str) -> int:
    """The 1-based line holding `marker` (exactly one)."""
    lines = [i for i, line in enumerate(text.splitlines(), 1) if marker in line]
    assert len(lines) == 1, f"{marker!r} on lines {lines}"
    return lines[0]


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


def load_dir(directory: Path, text: str, name: str = "m.yaml") -> ManifestSet:
    write(directory, {name: text})
    return load([directory])


def findings(directory: Path, text: str, env: dict[str, str] | None = None) -> list[Finding]:
    """Loader errors, or else every rule finding, for one manifest file."""
    try:
        manifest_set = load_dir(directory, text)
    except ManifestError as e:
        return e.findings
    return check(manifest_set, env=ENV if env is None else env)


def loader_errors(text: str, directory: Path) -> list[Finding]:
    try:
        load_dir(directory, text)
    except ManifestError as e:
        return [f for f in e.findings if f.severity is Severity.ERROR]
    return []
