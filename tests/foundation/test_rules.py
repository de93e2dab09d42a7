"""Every cross-resource rule: a manifest that breaks it (error or warning at the right file, line and field)
and a near miss that passes cleanly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from provider.errors import ManifestError, Severity
from provider import rules
from provider.rules import check, require_valid

from .helpers import BASE, ENV, ORG, OTHER_STRONG, REST, STRONG, findings, globex, load_dir, people, replace, user

ERROR, WARNING = Severity.ERROR, Severity.WARNING
MARK = "# !"  # the line a finding must point at


@dataclass
class Case:
    id: str
    bad: str
    field: str
    needle: str
    good: str
    severity: Severity = ERROR
    env: dict[str, str] | None = None
    good_env: dict[str, str] | None = None


def mark(text: str, old: str) -> str:
    return replace(text, old, old + "  " + MARK)


ORG_LINE = "apiVersion: tenancy/v1\nkind: Organization\nmetadata: {name: acme}"
ORG_MARKED = replace(BASE, ORG_LINE, "apiVersion: tenancy/v1  # !\nkind: Organization\nmetadata: {name: acme}")
TWO_DOMAINS = replace(BASE, "domains: [acme.example]", "domains: [acme.example, acme-shop.example]")
CS_SPEC = "kind: CustomerSubscription\nmetadata: {name: sigs, organization: acme}\nspec:"


def quota(name: str, domain: str, offer: str, maximum: str) -> str:
    return (
        f"---\napiVersion: tenancy/v1\nkind: MailboxQuota\nmetadata: {{name: {name}, organization: acme}}\n"
        f"spec:\n  domain: {domain}\n  offer: {offer}\n  maxAddresses: {maximum}\n"
    )


def alias(name: str, address: str, target: str = "bob") -> str:
    return (
        f"---\napiVersion: tenancy/v1\nkind: Alias\nmetadata: {{name: {name}, organization: acme}}\n"
        f"spec:\n  address: {address}\n  user: {target}\n"
    )


CASES = [
    Case(
        "organization-declared",
        mark(BASE + user("zed", org="acmee"), "metadata: {name: zed, organization: acmee}"),
        "metadata.organization",
        "organization 'acmee' is not declared in these manifests (did you mean 'acme'?)",
        BASE + user("zed"),
    ),
    Case(
        "team-member-reference",
        replace(BASE, "members: [ada, bob]", "members: [ada, zed]  # !"),
        "spec.members[1]",
        "no User named 'zed' is declared in organization acme",
        replace(BASE, "members: [ada, bob]", "members: [ada, carol]"),
    ),
    Case(
        "team-leader-reference",
        replace(BASE, "leader: ada", "leader: zed  # !"),
        "spec.leader",
        "no User named 'zed' is declared in organization acme",
        replace(BASE, "leader: ada", "leader: bob"),
    ),
    Case(
        "leader-among-members",
        replace(BASE, "leader: ada", "leader: carol  # !"),
        "spec.leader",
        "'carol' leads the team but is not one of its members; add carol to spec.members",
        replace(replace(BASE, "leader: ada", "leader: carol"), "members: [ada, bob]", "members: [ada, bob, carol]"),
    ),
    Case(
        "alias-user-reference",
        replace(BASE, "user: bob", "user: bobby  # !"),
        "spec.user",
        "no User named 'bobby' is declared in organization acme (did you mean 'bob'?)",
        replace(BASE, "user: bob", "user: carol"),
    ),
    Case(
        "parent-reference",
        replace(BASE, "  plan: entry\n", "  plan: entry\n  parent: nowhere  # !\n"),
        "spec.parent",
        "no Organization named 'nowhere' is declared",
        replace(BASE, "  plan: entry\n", "  plan: entry\n  parent: globex\n") + globex(),
    ),
    Case(
        "parent-cycle",
        replace(BASE, "  plan: entry\n", "  plan: entry\n  parent: globex  # !\n") + globex("  parent: acme\n"),
        "spec.parent",
        "organizations form a parent cycle: acme → globex → acme",
        replace(BASE, "  plan: entry\n", "  plan: entry\n  parent: globex\n") + globex(),
    ),
    Case(
        "administrator-required",
        replace(ORG_MARKED, "role: administrator", "role: collaborator"),
        "",
        "organization acme declares no administrator; add a User with role administrator or legal-representative",
        replace(BASE, "role: administrator", "role: legal-representative"),
    ),
    Case(
        "at-most-three-administrators",
        ORG_MARKED + "".join(user(n, role="administrator") for n in ("fay", "gus", "hep")),
        "",
        "organization acme has 4 administrators (more than 3)",
        BASE + "".join(user(n) for n in ("fay", "gus", "hep")),
        WARNING,
    ),
    Case(
        "administrators-at-most-a-fifth",
        replace(
            ORG_MARKED,
            "email: bob@acme.example\n  displayName: Bob\n  role: collaborator",
            "email: bob@acme.example\n  displayName: Bob\n  role: administrator",
        ),
        "",
        "administrators are 2 of the 5 users of organization acme (more than a fifth)",
        replace(
            BASE,
            "email: bob@acme.example\n  displayName: Bob\n  role: collaborator",
            "email: bob@acme.example\n  displayName: Bob\n  role: administrator",
        )
        + "".join(user(n) for n in ("fay", "gus", "hep", "ian", "jay")),
        WARNING,
    ),
    Case(
        "domain-owned-once",
        BASE + mark(globex(domain="acme.example"), "domains: [acme.example]"),
        "spec.domains[0]",
        "domain 'acme.example' is already used by Organization acme (",
        BASE + globex(),
    ),
    Case(
        "domain-listed-once",
        replace(BASE, "domains: [acme.example]", "domains: [acme.example, acme.example]  # !"),
        "spec.domains[1]",
        "domain acme.example is listed twice; list it once",
        TWO_DOMAINS,
    ),
    Case(
        "user-email-on-owned-domain",
        mark(BASE + user("zed", domain="elsewhere.example"), "email: zed@elsewhere.example"),
        "spec.email",
        "zed@elsewhere.example is not on a domain of organization acme (acme.example)",
        BASE + user("zed", domain="elsewhere.example", role="external"),
    ),
    Case(
        "quota-domain-owned",
        mark(BASE + quota("other", "other.example", "starter", "2"), "domain: other.example"),
        "spec.domain",
        "other.example is not a domain of organization acme (acme.example)",
        TWO_DOMAINS + quota("other", "acme-shop.example", "starter", "2"),
    ),
    Case(
        "one-quota-per-domain",
        BASE + mark(quota("again", "acme.example", "standard", "10"), "domain: acme.example"),
        "spec.domain",
        "a mailbox quota for domain 'acme.example' is already used by MailboxQuota acme/main (",
        TWO_DOMAINS + quota("again", "acme-shop.example", "standard", "10"),
    ),
    Case(
        "quota-minimum-per-offer",
        mark(TWO_DOMAINS + quota("shop", "acme-shop.example", "standard", "3"), "maxAddresses: 3"),
        "spec.maxAddresses",
        "a standard quota needs at least 5 addresses (got 3); raise maxAddresses or use offer: starter",
        TWO_DOMAINS + quota("shop", "acme-shop.example", "starter", "3"),
    ),
    Case(
        "quota-covers-mailboxes",
        replace(BASE, "maxAddresses: 10", "maxAddresses: 5  # !") + user("fay"),
        "spec.maxAddresses",
        "6 users have a mailbox on acme.example but the quota allows 5; raise maxAddresses to at least 6",
        # external users and aliases take no address: 5 mailboxes fit a quota of 5
        replace(BASE, "maxAddresses: 10", "maxAddresses: 5")
        + user("fay", domain="elsewhere.example", role="external")
        + alias("sales", "sales@acme.example"),
    ),
    Case(
        "addresses-unique-case-insensitive",
        mark(BASE + alias("dup", "ADA@acme.example"), "address: ADA@acme.example"),
        "spec.address",
        "address 'ADA@acme.example' is already used by User acme/ada (",
        BASE + alias("dup", "ada.lovelace@acme.example"),
    ),
    Case(
        "usernames-unique-case-insensitive",
        BASE + user("zed", extra="  username: BOB@acme.example  # !\n"),
        "spec.username",
        "username 'BOB@acme.example' is already used by User acme/bob (",
        BASE + user("zed", extra="  username: zed.smith\n"),
    ),
    Case(
        "alias-on-owned-domain",
        mark(BASE + alias("away", "x@elsewhere.example"), "address: x@elsewhere.example"),
        "spec.address",
        "x@elsewhere.example is not on a domain of organization acme (acme.example); an alias must use one",
        BASE + alias("away", "x@acme.example"),
    ),
    Case(
        "contact-when-customer-edits",
        replace(BASE, CS_SPEC, CS_SPEC + "  # !") + "  customerCanEditSignatures: true\n",
        "spec.contact",
        "customerCanEditSignatures needs a contact",
        BASE + "  customerCanEditSignatures: true\n  contact: {name: Pat, email: pat@customer.example}\n",
    ),
    Case(
        "exchange-on-premises-only-for-microsoft",
        replace(BASE, "product: signatures-microsoft-365", "product: signatures-google-workspace")
        + "  signatureModes: [server-side, exchange-on-premises]  # !\n",
        "spec.signatureModes[1]",
        "exchange-on-premises is only available with product signatures-microsoft-365",
        BASE + "  signatureModes: [server-side, exchange-on-premises]\n",
    ),
    Case(
        "paid-plan-for-members",
        replace(BASE, "plan: entry", "plan: free  # !"),
        "spec.plan",
        "organization acme is on plan free, which cannot hold users, teams, aliases or mailbox quotas, "
        "but it declares 1 mailbox quota, 5 users, 1 team, 1 alias; upgrade the organization's plan to entry or pro",
        replace(BASE, "plan: entry", "plan: pro"),
    ),
    Case(
        "standard-charset-utf8",
        replace(BASE, "  plan: entry\n", "  plan: entry\n  charset: ISO-8859-1  # !\n"),
        "spec.charset",
        "a standard organization must use charset UTF-8 (got 'ISO-8859-1'); set charset: UTF-8 or type: custom",
        replace(BASE, "  plan: entry\n", "  plan: entry\n  type: custom\n  charset: ISO-8859-1\n"),
    ),
    Case(
        "display-name-unique-among-siblings",
        BASE + mark(globex().replace("displayName: Globex", "displayName: Acme"), "displayName: Acme"),
        "spec.displayName",
        "displayName 'Acme' at the top level is already used by Organization acme (",
        BASE + globex("  parent: acme\n").replace("displayName: Globex", "displayName: Acme"),
    ),
    Case(
        "reserved-labels",
        replace(BASE, "metadata: {name: acme}", "metadata: {name: acme, labels: {tenancy/stack: prod}}  # !"),
        "metadata.labels.tenancy/stack",
        "label tenancy/stack is reserved",
        replace(BASE, "metadata: {name: acme}", "metadata: {name: acme, labels: {example.com/stack: prod}}"),
    ),
    Case(
        "password-source-resolves",
        replace(BASE, "password: {fromEnv: ADA_PW}", "password: {fromEnv: ADA_PW}  # !"),
        "spec.password",
        "environment variable ADA_PW is not set",
        BASE,
        env={},
    ),
    Case(
        "password-strength",
        replace(BASE, "password: {fromEnv: ADA_PW}", "password: {fromEnv: ADA_PW}  # !"),
        "spec.password",
        "the password from environment variable ADA_PW is weak: it is a common password",
        BASE,
        env={"ADA_PW": "Password123!"},
    ),
    Case(
        "password-not-shared-across-organizations",
        BASE
        + mark(
            globex().replace("role: administrator\n", "role: administrator\n  password: {fromEnv: GINA_PW}\n"),
            "password: {fromEnv: GINA_PW}",
        ),
        "spec.password",
        "User globex/gina has the same password as User acme/ada (",
        BASE + globex().replace("role: administrator\n", "role: administrator\n  password: {fromEnv: GINA_PW}\n"),
        env={"ADA_PW": STRONG, "GINA_PW": STRONG},
        good_env={"ADA_PW": STRONG, "GINA_PW": OTHER_STRONG},
    ),
    Case(
        "billing-rights-for-collaborators",
        replace(BASE, "  password: {fromEnv: ADA_PW}\n", "  password: {fromEnv: ADA_PW}\n  billingRights: true  # !\n"),
        "spec.billingRights",
        "billingRights only matters for collaborators (role administrator ignores it)",
        replace(BASE, "email: bob@acme.example\n", "email: bob@acme.example\n  billingRights: true\n"),
        WARNING,
    ),
]


def marked_line(text: str) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if line.rstrip().endswith(MARK)]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_is_broken_and_located(case: Case, tmp_path: Path) -> None:
    found = findings(tmp_path, case.bad, case.env)
    file = str(tmp_path / "m.yaml")
    line = marked_line(case.bad)
    hits = [f for f in found if case.needle in f.message]
    assert hits, "\n".join(map(str, found))
    hit = hits[0]
    assert (hit.file, hit.line, hit.field, hit.severity) == (file, line, case.field, case.severity), str(hit)
    assert hit.col >= 1
    if case.field:
        assert hit.message.startswith(case.field + ": ")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_near_miss_passes(case: Case, tmp_path: Path) -> None:
    env = case.good_env if case.good_env is not None else ENV
    assert findings(tmp_path, case.good, env) == []


def test_base_is_clean(tmp_path: Path) -> None:
    assert findings(tmp_path, BASE + globex()) == []


def test_same_password_within_one_organization_is_allowed(tmp_path: Path) -> None:
    text = replace(BASE, "email: bob@acme.example\n", "email: bob@acme.example\n  password: {fromEnv: ADA_PW}\n")
    assert findings(tmp_path, text) == []


def test_password_messages_never_show_the_secret(tmp_path: Path) -> None:
    weak = "xq123456789012"
    text = BASE + globex().replace("role: administrator\n", "role: administrator\n  password: {fromEnv: GINA_PW}\n")
    for env in ({"ADA_PW": weak, "GINA_PW": weak}, {"ADA_PW": STRONG, "GINA_PW": STRONG}):
        found = findings(tmp_path, text, env)
        assert found
        secret = env["ADA_PW"]
        assert all(secret not in str(f) and secret[:8] not in str(f) for f in found)


def test_password_from_file_relative_to_manifest(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "ada.txt").write_text(STRONG + "\n")
    text = replace(BASE, "password: {fromEnv: ADA_PW}", "password: {fromFile: secrets/ada.txt}")
    assert findings(tmp_path, text, env={}) == []


def test_secrets_are_not_resolved_when_asked_not_to(tmp_path: Path) -> None:
    manifest_set = load_dir(tmp_path, BASE)
    assert check(manifest_set, env={}, resolve_secrets=False) == []
    assert check(manifest_set, env={})  # the unset variable is an error otherwise


def test_findings_are_sorted_by_file_and_line(tmp_path: Path) -> None:
    text = replace(replace(BASE, "leader: ada", "leader: zed"), "user: bob", "user: nobody")
    found = findings(tmp_path, text)
    assert found == sorted(found)
    assert len({f.line for f in found}) >= 2


def test_require_valid_raises_with_every_error(tmp_path: Path) -> None:
    text = replace(replace(BASE, "leader: ada", "leader: zed"), "user: bob", "user: nobody")
    with pytest.raises(ManifestError) as raised:
        require_valid(load_dir(tmp_path, text), env=ENV)
    assert len(raised.value.findings) >= 3  # two references and the leader rule
    assert require_valid(load_dir(tmp_path, BASE), env=ENV) == []


def test_org_rules_do_not_cascade_from_an_undeclared_organization(tmp_path: Path) -> None:
    """One mistake, one error: a wrong organization name does not also break its references and domains."""
    text = (
        ORG
        + people()
        + mark(
            REST.replace("organization: acme}", "organization: acmee}", 1),
            "metadata: {name: sales, organization: acmee}",
        )
    )
    found = [f for f in findings(tmp_path, text) if f.severity is ERROR]
    assert [f.field for f in found] == ["metadata.organization"], "\n".join(map(str, found))


def test_a_free_organization_needs_no_administrator(tmp_path: Path) -> None:
    """SPEC §2: the admin invariant holds for paid plans; a free organization holds no users at all."""
    text = "apiVersion: tenancy/v1\nkind: Organization\nmetadata: {name: lone}\nspec: {displayName: Lone}\n"
    assert [f for f in findings(tmp_path, text) if f.severity is ERROR] == []
    paid = text.replace("displayName: Lone}", "displayName: Lone, plan: entry}")
    assert any("declares no administrator" in f.message for f in findings(tmp_path, paid))


def test_dns_names_are_case_insensitive_and_kept_lowercased(tmp_path: Path) -> None:
    text = replace(BASE, "domains: [acme.example]", "domains: [ACME.Example]")
    assert [f for f in findings(tmp_path, text) if f.severity is ERROR] == []
    manifests = load_dir(tmp_path, text)
    org = next(m for m in manifests.manifests if m.kind.name == "Organization")
    assert org.spec["domains"] == ["acme.example"]
    twice = replace(BASE, "domains: [acme.example]", "domains: [acme.example, ACME.example]  # !")
    found = [f for f in findings(tmp_path, twice) if f.severity is ERROR]
    assert [f.field for f in found] == ["spec.domains[1]"] and "listed twice" in found[0].message


CLAIM_CASES = [c for c in CASES if "already used" in c.needle]


@pytest.mark.parametrize("case", CLAIM_CASES, ids=[c.id for c in CLAIM_CASES])
@pytest.mark.parametrize("collide", [lambda key: 0, lambda key: len(key[1]) % 3], ids=["one-hash", "three-hashes"])
def test_unique_values_told_apart_when_their_hashes_collide(
    case: Case, collide: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules keep the first holder of each unique value by its hash: values of one hash are still told
    apart, each clash found once and only the real ones."""
    env = case.good_env if case.good_env is not None else ENV
    expected = findings(tmp_path, case.bad, case.env), findings(tmp_path, case.good, env)
    monkeypatch.setattr(rules, "claim_hash", collide)
    assert (findings(tmp_path, case.bad, case.env), findings(tmp_path, case.good, env)) == expected
    assert expected[1] == [] and any(case.needle in f.message for f in expected[0])
