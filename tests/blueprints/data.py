"""A blueprint and its tenants as text, shared by the tests of this directory."""

from __future__ import annotations

BLUEPRINT = """\
apiVersion: tenancy/v1
kind: Blueprint
metadata: {name: mail-business}
spec:
  description: Hosted mail for a small business
  parameters:
    type: object
    required: [company, domain, admin]
    additionalProperties: false
    properties:
      company: {type: string, minLength: 1}
      domain: {type: string}
      seats: {type: integer, minimum: 5, default: 5}
      plan: {type: string, default: entry}
      shared: {type: boolean, default: false}
      admin:
        type: object
        required: [name, displayName]
        properties: {name: {type: string}, displayName: {type: string}}
      staff: {type: array, default: [], items: {type: object, required: [name, displayName]}}
  resources:
    - kind: Organization
      metadata: {name: "${tenant.name}"}
      spec: {displayName: "${params.company}", plan: "${params.plan}", domains: ["${params.domain}"]}
    - kind: MailboxQuota
      metadata: {name: main}
      spec: {domain: "${params.domain}", maxAddresses: "${params.seats}"}
    - kind: User
      metadata: {name: "${params.admin.name}"}
      spec:
        email: "${params.admin.name}@${params.domain}"
        displayName: "${params.admin.displayName}"
        role: administrator
        subscription: entry
    - kind: User
      forEach: "${params.staff}"
      metadata: {name: "${each.name}", labels: {seat: "s${index}"}}
      spec: {email: "${each.name}@${params.domain}", displayName: "${each.displayName}", subscription: entry}
    - kind: Team
      when: "${params.shared}"
      metadata: {name: shared}
      spec: {displayName: "Shared $${not an expression}", members: ["${params.admin.name}"]}
"""

STAFF = "[{name: bob, displayName: Bob}, {name: eve, displayName: Eve}, {name: kim, displayName: Kim}, " \
        "{name: lou, displayName: Lou}]"


def tenant(name: str, *, staff: str = STAFF, extra: str = "", labels: str = "{}") -> str:
    """A Tenant of mail-business for the organization `name` (domain NAME.example, admin ada)."""
    return f"""\
apiVersion: tenancy/v1
kind: Tenant
metadata: {{name: {name}, labels: {labels}}}
spec:
  blueprint: mail-business
  parameters:
    company: {name.title()} GmbH
    domain: {name}.example
    admin: {{name: ada, displayName: Ada Admin}}
    staff: {staff}
{extra}"""
