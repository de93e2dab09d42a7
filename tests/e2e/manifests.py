"""Manifest texts for end-to-end tests."""

ACME = """\
apiVersion: tenancy/v1
kind: Organization
metadata: {name: acme}
spec:
  displayName: Acme Corp
  plan: entry
  domains: [acme.example]
---
apiVersion: tenancy/v1
kind: User
metadata: {name: ada, organization: acme}
spec:
  email: ada@acme.example
  displayName: Ada Admin
  role: administrator
  subscription: pro
  password: {fromEnv: ADA_PASSWORD}
---
apiVersion: tenancy/v1
kind: User
metadata: {name: bob, organization: acme}
spec:
  email: bob@acme.example
  displayName: Bob
  subscription: entry
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
"""

PASSWORD = "Vx9-marker-Q7z!kT2p"
ENV = {"ADA_PASSWORD": PASSWORD}


def users(n: int, organization: str = "acme", start: int = 0) -> str:
    return "".join(
        f"---\napiVersion: tenancy/v1\nkind: User\nmetadata: {{name: u{i}, organization: {organization}}}\n"
        f"spec: {{email: u{i}@{organization}.example, displayName: User {i}}}\n"
        for i in range(start, start + n)
    )
