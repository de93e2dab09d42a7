"""Every business rule of SPEC §2 that needs state: refused with an actionable message, allowed case accepted.

Each test runs on SQLite and on PostgreSQL (the `service` fixture).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tenancy_backend.db import resources
from tenancy_backend.passwords import verify_password
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service

from tests.builders import STRONG_PASSWORD, alias, op, org, quota, subscription, team, user
from .helpers import refused

ROOT = Scope.root()


@pytest.fixture
def acme(service: Service) -> Service:
    """A paid organization `acme` owning acme.example, with users alice and bob."""
    service.create(ROOT, "Organization", None, org("acme"))
    service.create(ROOT, "User", "acme", user("acme", "alice", role="administrator"))
    service.create(ROOT, "User", "acme", user("acme", "bob"))
    return service


# --- identity and uniqueness ----------------------------------------------------------------------


def test_names_are_unique_per_kind_and_organization(acme: Service) -> None:
    with refused(409, "User acme/alice already exists", "PUT"):
        acme.create(ROOT, "User", "acme", user("acme", "alice", email="other@acme.example"))
    acme.create(ROOT, "Team", "acme", team("acme", "alice"))  # another kind may share the name
    acme.create(ROOT, "Organization", None, org("beta"))
    acme.create(ROOT, "User", "beta", user("beta", "alice"))  # another organization too


def test_domains_are_unique_across_the_backend(acme: Service) -> None:
    with refused(409, "domain 'acme.example' is already used by Organization acme", path="spec.domains[1]"):
        acme.create(ROOT, "Organization", None, org("beta", domains=["beta.example", "acme.example"]))
    acme.create(ROOT, "Organization", None, org("beta", domains=["beta.example"]))


def test_a_domain_listed_twice_is_refused(service: Service) -> None:
    with refused(422, "domain acme.example is listed twice; list it once", path="spec.domains[1]"):
        service.create(ROOT, "Organization", None, org("acme", domains=["acme.example", "acme.example"]))


def test_addresses_are_unique_across_users_and_aliases_ignoring_case(acme: Service) -> None:
    with refused(409, "address 'ALICE@acme.example' is already used by User acme/alice", path="spec.email"):
        acme.create(ROOT, "User", "acme", user("acme", "alice2", email="ALICE@acme.example"))
    with refused(409, "already used by User acme/bob", path="spec.address"):
        acme.create(ROOT, "Alias", "acme", alias("acme", "b", "alice", address="Bob@Acme.example"))
    acme.create(ROOT, "Alias", "acme", alias("acme", "info", "alice"))
    with refused(409, "already used by Alias acme/info"):
        acme.create(ROOT, "User", "acme", user("acme", "info"))


def test_display_names_are_unique_among_siblings(service: Service) -> None:
    service.create(ROOT, "Organization", None, org("holding", displayName="Holding"))
    service.create(ROOT, "Organization", None, org("a", parent="holding", displayName="Shop"))
    with refused(
        409,
        "displayName 'Shop' under 'holding' is already used by Organization a; "
        "organizations with the same parent need distinct display names",
    ):
        service.create(ROOT, "Organization", None, org("b", parent="holding", displayName="Shop"))
    service.create(ROOT, "Organization", None, org("b", displayName="Shop"))  # top level: another parent


# --- quotas ---------------------------------------------------------------------------------------


def test_quota_limits_users_on_its_domain(acme: Service) -> None:
    acme.create(ROOT, "MailboxQuota", "acme", quota("acme", "main", max_addresses=3, offer="starter"))
    acme.create(ROOT, "User", "acme", user("acme", "carol"))
    with refused(409, "no free address", "MailboxQuota acme/main allows 3", "raise the quota's spec.maxAddresses"):
        acme.create(ROOT, "User", "acme", user("acme", "dave"))
    # External users and aliases do not consume addresses.
    acme.create(ROOT, "User", "acme", user("acme", "ext", role="external"))
    acme.create(ROOT, "Alias", "acme", alias("acme", "sales", "carol"))
    assert acme.get(ROOT, "MailboxQuota", "acme", "main")["status"] == {"usedAddresses": 3}
    acme.update(ROOT, "MailboxQuota", "acme", "main", quota("acme", "main", max_addresses=4, offer="starter"))
    acme.create(ROOT, "User", "acme", user("acme", "dave"))
    assert acme.get(ROOT, "MailboxQuota", "acme", "main")["status"] == {"usedAddresses": 4}


def test_quota_cannot_fall_below_used_addresses(acme: Service) -> None:
    acme.create(ROOT, "MailboxQuota", "acme", quota("acme", "main", max_addresses=5))
    for name in ("carol", "dave", "erin"):
        acme.create(ROOT, "User", "acme", user("acme", name))
    lowered = quota("acme", "main", max_addresses=4, offer="starter")
    with refused(409, "maxAddresses 4 is below the 5 addresses in use", "delete users", path="spec.maxAddresses"):
        acme.update(ROOT, "MailboxQuota", "acme", "main", lowered)
    acme.delete(ROOT, "User", "acme", "erin")
    assert acme.update(ROOT, "MailboxQuota", "acme", "main", lowered)["spec"]["maxAddresses"] == 4


def test_domain_without_quota_is_unlimited(acme: Service) -> None:
    for i in range(8):
        acme.create(ROOT, "User", "acme", user("acme", f"u{i}"))
    users = acme.list(ROOT, "User", "acme", limit=100).items
    assert len(users) == 10 and all(u["status"]["mailbox"] for u in users)  # alice, bob and eight more


def test_quota_rules(acme: Service) -> None:
    with refused(422, "a standard quota needs at least 5 addresses (got 4)", path="spec.maxAddresses"):
        acme.create(ROOT, "MailboxQuota", "acme", quota("acme", "q", max_addresses=4))
    with refused(422, "other.example is not a domain of organization acme (acme.example)", path="spec.domain"):
        acme.create(ROOT, "MailboxQuota", "acme", quota("acme", "q", domain="other.example"))
    acme.create(ROOT, "MailboxQuota", "acme", quota("acme", "q"))
    with refused(409, "a mailbox quota for domain 'acme.example' is already used by MailboxQuota acme/q"):
        acme.create(ROOT, "MailboxQuota", "acme", quota("acme", "q2"))


# --- plans ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        user("free", "alice"),
        team("free", "devs"),
        quota("free", "q"),
    ],
    ids=["user", "team", "quota"],
)
def test_gated_kinds_need_a_paid_plan(service: Service, document: dict) -> None:
    service.create(ROOT, "Organization", None, org("free", plan="free"))
    with refused(409, "Organization 'free' is on plan 'free'", "upgrade the organization's spec.plan"):
        service.create(ROOT, document["kind"], "free", document)
    service.update(ROOT, "Organization", None, "free", org("free", plan="pro"))
    created = service.create(ROOT, document["kind"], "free", document)
    assert (
        service.get(ROOT, document["kind"], "free", created["metadata"]["name"])["metadata"]["uid"]
        == created["metadata"]["uid"]
    )


def test_subscriptions_are_allowed_on_a_free_plan(service: Service) -> None:
    service.create(ROOT, "Organization", None, org("free", plan="free"))
    created = service.create(ROOT, "CustomerSubscription", "free", subscription("free", "s"))
    assert created["status"]["phase"] == "trial" and created["metadata"]["organization"] == "free"


def test_downgrade_to_free_is_refused_while_holding_gated_resources(acme: Service) -> None:
    with refused(409, "cannot move to plan 'free' while it holds 2 users", "delete them first", path="spec.plan"):
        acme.update(ROOT, "Organization", None, "acme", org("acme", plan="free"))
    acme.delete(ROOT, "User", "acme", "alice")
    acme.delete(ROOT, "User", "acme", "bob")
    assert acme.update(ROOT, "Organization", None, "acme", org("acme", plan="free"))["spec"]["plan"] == "free"


# --- references -----------------------------------------------------------------------------------


def test_team_members_and_leader_must_exist(acme: Service) -> None:
    with refused(422, "User 'zoe' does not exist in organization 'acme'", "create it first", path="spec.members[1]"):
        acme.create(ROOT, "Team", "acme", team("acme", "devs", ["alice", "zoe"]))
    with refused(422, "'bob' leads the team but is not one of its members", path="spec.leader"):
        acme.create(ROOT, "Team", "acme", team("acme", "devs", ["alice"], leader="bob"))
    created = acme.create(ROOT, "Team", "acme", team("acme", "devs", ["alice", "bob"], leader="bob"))
    assert created["spec"]["leader"] == "bob"


def test_alias_user_must_exist(acme: Service) -> None:
    with refused(422, "User 'zoe' does not exist", path="spec.user"):
        acme.create(ROOT, "Alias", "acme", alias("acme", "info", "zoe"))
    with refused(
        422,
        "info@elsewhere.example is not on a domain of organization acme (acme.example); an alias must",
        path="spec.address",
    ):
        acme.create(ROOT, "Alias", "acme", alias("acme", "info", "alice", address="info@elsewhere.example"))


def test_deleting_a_referenced_user_names_the_referrers(acme: Service) -> None:
    acme.create(ROOT, "Team", "acme", team("acme", "devs", ["alice", "bob"], leader="alice"))
    acme.create(ROOT, "Alias", "acme", alias("acme", "info", "alice"))
    with refused(409, "User acme/alice cannot be deleted", "Team acme/devs", "Alias acme/info", "remove it from them"):
        acme.delete(ROOT, "User", "acme", "alice")
    acme.update(ROOT, "Team", "acme", "devs", team("acme", "devs", ["bob"]))
    acme.delete(ROOT, "Alias", "acme", "info")
    assert acme.delete(ROOT, "User", "acme", "alice") is None


def test_scoped_resources_need_their_organization(service: Service) -> None:
    with refused(404, "organization 'ghost' not found"):
        service.create(ROOT, "User", "ghost", user("ghost", "alice"))


# --- organizations --------------------------------------------------------------------------------


def test_parent_must_exist(service: Service) -> None:
    with refused(404, "parent organization 'ghost' not found", path="spec.parent"):
        service.create(ROOT, "Organization", None, org("child", parent="ghost"))


def test_parent_cycles_are_refused(service: Service) -> None:
    service.create(ROOT, "Organization", None, org("a"))
    service.create(ROOT, "Organization", None, org("b", parent="a"))
    service.create(ROOT, "Organization", None, org("c", parent="b"))
    with refused(409, "would make a cycle: a → c → b → a", path="spec.parent"):
        service.update(ROOT, "Organization", None, "a", org("a", parent="c"))
    with refused(422, "cannot be its own parent"):
        service.update(ROOT, "Organization", None, "a", org("a", parent="a"))
    service.update(ROOT, "Organization", None, "c", org("c", parent="a"))  # a move without a cycle


def test_deleting_an_organization_that_still_holds_things_lists_them(acme: Service) -> None:
    acme.create(ROOT, "Organization", None, org("sub", parent="acme"))
    with refused(
        409, "Organization 'acme' cannot be deleted", "sub-organizations 'sub'", "2 resource(s)", "User acme/alice"
    ):
        acme.delete(ROOT, "Organization", None, "acme")
    acme.delete(ROOT, "Organization", None, "sub")
    acme.delete(ROOT, "User", "acme", "alice")
    acme.delete(ROOT, "User", "acme", "bob")
    acme.create(ROOT, "CustomerSubscription", "acme", subscription("acme", "s"))
    acme.delete(ROOT, "CustomerSubscription", "acme", "s")  # archived: goes with the organization
    acme.deposit(ROOT, "acme", "10.00")
    assert acme.delete(ROOT, "Organization", None, "acme") is None
    with refused(404):
        acme.get(ROOT, "Organization", None, "acme")


def test_user_email_must_be_on_an_organization_domain_unless_external(acme: Service) -> None:
    with refused(
        422, "carol@gmail.example is not on a domain of organization acme (acme.example)", "or set role: external"
    ):
        acme.create(ROOT, "User", "acme", user("acme", "carol", email="carol@gmail.example"))
    external = acme.create(ROOT, "User", "acme", user("acme", "carol", email="carol@gmail.example", role="external"))
    assert external["status"] == {"mailbox": False}


def test_dropping_a_domain_still_in_use_is_refused(acme: Service) -> None:
    acme.update(ROOT, "Organization", None, "acme", org("acme", domains=["acme.example", "acme.test"]))
    acme.create(ROOT, "User", "acme", user("acme", "carol", email="carol@acme.test"))
    with refused(409, "cannot drop domain 'acme.test'", "User acme/carol", path="spec.domains"):
        acme.update(ROOT, "Organization", None, "acme", org("acme", domains=["acme.example"]))
    acme.delete(ROOT, "User", "acme", "carol")
    acme.update(ROOT, "Organization", None, "acme", org("acme", domains=["acme.example"]))


def test_standard_organizations_use_utf8(service: Service) -> None:
    with refused(422, "a standard organization must use charset UTF-8", path="spec.charset"):
        service.create(ROOT, "Organization", None, org("acme", charset="ISO-8859-1"))
    service.create(ROOT, "Organization", None, org("acme", charset="ISO-8859-1", type="custom"))


# --- customer subscriptions -----------------------------------------------------------------------


def test_subscription_contact_and_signature_modes(acme: Service) -> None:
    with refused(422, "customerCanEditSignatures needs a contact", path="spec.contact"):
        acme.create(ROOT, "CustomerSubscription", "acme", subscription("acme", "s", customerCanEditSignatures=True))
    google = subscription("acme", "s", product="signatures-google-workspace", signatureModes=["exchange-on-premises"])
    with refused(
        422,
        "exchange-on-premises is only available with product signatures-microsoft-365",
        path="spec.signatureModes[0]",
    ):
        acme.create(ROOT, "CustomerSubscription", "acme", google)
    acme.create(
        ROOT,
        "CustomerSubscription",
        "acme",
        subscription(
            "acme",
            "s",
            customerCanEditSignatures=True,
            contact={"name": "Ann", "email": "ann@customer.example"},
            signatureModes=["server-side", "exchange-on-premises"],
        ),
    )


def test_archived_is_final(acme: Service) -> None:
    acme.create(ROOT, "CustomerSubscription", "acme", subscription("acme", "s"))
    archived = acme.delete(ROOT, "CustomerSubscription", "acme", "s")
    assert archived is not None and archived["spec"]["state"] == "archived"
    with refused(409, "archived is final", path="spec.state"):
        acme.update(ROOT, "CustomerSubscription", "acme", "s", subscription("acme", "s"))


# --- immutable fields, protection, rights ---------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "changed", "field"),
    [
        (user("acme", "alice", role="administrator"), {"email": "alice2@acme.example"}, "spec.email"),
        (quota("acme", "q"), {"domain": "acme.test"}, "spec.domain"),
        (subscription("acme", "s"), {"product": "signatures-google-workspace"}, "spec.product"),
    ],
    ids=["user-email", "quota-domain", "subscription-product"],
)
def test_immutable_fields_cannot_change(acme: Service, document: dict, changed: dict, field: str) -> None:
    acme.update(ROOT, "Organization", None, "acme", org("acme", domains=["acme.example", "acme.test"]))
    kind, name = document["kind"], document["metadata"]["name"]
    if kind != "User":
        acme.create(ROOT, kind, "acme", document)
    updated = {**document, "spec": {**document["spec"], **changed}}
    with refused(409, "this field is immutable; replace the resource", path=field):
        acme.update(ROOT, kind, "acme", name, updated)


def test_protected_resources_cannot_be_deleted_until_cleared(acme: Service) -> None:
    acme.create(ROOT, "User", "acme", user("acme", "carol", meta={"protected": True}))
    with refused(409, "User acme/carol is protected", "clear metadata.protected"):
        acme.delete(ROOT, "User", "acme", "carol")
    acme.update(ROOT, "User", "acme", "carol", user("acme", "carol"))
    assert acme.delete(ROOT, "User", "acme", "carol") is None


def test_protected_subscription_is_not_archived(acme: Service) -> None:
    acme.create(ROOT, "CustomerSubscription", "acme", subscription("acme", "s", meta={"protected": True}))
    with refused(409, "is protected"):
        acme.delete(ROOT, "CustomerSubscription", "acme", "s")


def test_legal_representative_needs_the_right(acme: Service) -> None:
    plain = Scope.root(legal_representative=False)
    with refused(403, "granting role 'legal-representative' needs a token that holds that right", path="spec.role"):
        acme.create(plain, "User", "acme", user("acme", "lena", role="legal-representative"))
    acme.create(ROOT, "User", "acme", user("acme", "lena", role="legal-representative"))
    # Keeping the role does not grant it; a plain token may still edit her other fields.
    acme.update(plain, "User", "acme", "lena", user("acme", "lena", role="legal-representative", displayName="Lena B"))
    with refused(403):
        acme.update(plain, "User", "acme", "bob", user("acme", "bob", role="legal-representative"))


# --- passwords ------------------------------------------------------------------------------------


def _password_hash(service: Service, organization: str, name: str) -> str | None:
    with service._engine.connect() as conn:
        return conn.execute(
            select(resources.c.password_hash).where(
                resources.c.kind == "User", resources.c.organization == organization, resources.c.name == name
            )
        ).scalar_one()


def test_weak_passwords_are_refused_without_echoing_them(acme: Service) -> None:
    with refused(422, "the password is too weak", path="spec.password") as info:
        acme.create(ROOT, "User", "acme", user("acme", "carol", password="xq12345"))
    assert "xq12345" not in str(info.value.problem())


def test_passwords_are_stored_as_scrypt_hashes_and_never_returned(acme: Service) -> None:
    created = acme.create(ROOT, "User", "acme", user("acme", "carol", password=STRONG_PASSWORD))
    assert "password" not in created["spec"] and created["spec"]["passwordVersion"] == 1
    stored = _password_hash(acme, "acme", "carol")
    assert stored is not None and stored.startswith("scrypt$16384$8$1$") and STRONG_PASSWORD not in stored
    assert verify_password(STRONG_PASSWORD, stored)
    assert "password" not in acme.get(ROOT, "User", "acme", "carol")["spec"]


def test_rotating_a_password_needs_the_new_password(acme: Service) -> None:
    with refused(422, "spec.passwordVersion changed from 1 to 2 but no password was sent"):
        acme.update(ROOT, "User", "acme", "bob", user("acme", "bob", passwordVersion=2))
    rotated = acme.update(
        ROOT, "User", "acme", "bob", user("acme", "bob", passwordVersion=2, password="N3w!pass-Word-77")
    )
    assert rotated["spec"]["passwordVersion"] == 2
    assert verify_password("N3w!pass-Word-77", _password_hash(acme, "acme", "bob") or "")


def test_users_of_different_organizations_may_not_share_a_password(acme: Service) -> None:
    shared, other = STRONG_PASSWORD, "Kp3$wZ9!qLm-Rt7x"
    acme.create(ROOT, "User", "acme", user("acme", "carol", password=shared))
    acme.create(ROOT, "User", "acme", user("acme", "dave", password=shared))  # within one organization: allowed
    acme.create(ROOT, "Organization", None, org("globex"))
    with refused(409, "already used by a user of another organization", path="spec.password") as refusal:
        acme.create(ROOT, "User", "globex", user("globex", "gus", password=shared))
    problem = str(refusal.value.problem())
    assert "acme" not in problem and "carol" not in problem and shared not in problem  # nothing about the other
    acme.create(ROOT, "User", "globex", user("globex", "gus", password=other))
    with refused(409, "already used by a user of another organization"):  # nor by rotating to it
        acme.update(ROOT, "User", "globex", "gus", user("globex", "gus", passwordVersion=2, password=shared))
    with refused(409, "already used by a user of another organization"):  # nor within one changeset
        acme.changeset(
            ROOT,
            [
                op("create", org("initech")),
                op("create", user("initech", "ian", password="Zq8!vBn4@Hs6-Lc2")),
                op("create", user("globex", "gia", password="Zq8!vBn4@Hs6-Lc2")),
            ],
        )
    assert acme.list(ROOT, "Organization", None).items[-1]["metadata"]["name"] == "globex"  # all or nothing
    # The fingerprint is as private as the hash: never in a document.
    assert "fingerprint" not in str(acme.get(ROOT, "User", "acme", "carol"))


def test_a_password_version_beyond_32_bits_is_refused(acme: Service) -> None:
    """Larger numbers would come back as floats (1e+26) that a PUT of the same document then refuses."""
    with refused(422, "spec.passwordVersion"):
        acme.create(ROOT, "User", "acme", user("acme", "big", passwordVersion=10**26, password="N3w!pass-Word-77"))


# --- billing --------------------------------------------------------------------------------------


def test_organization_status_counts_users_and_costs(acme: Service) -> None:
    acme.create(ROOT, "User", "acme", user("acme", "carol", subscription="pro"))
    acme.create(ROOT, "User", "acme", user("acme", "dave", subscription="entry", role="legal-representative"))
    status = acme.get(ROOT, "Organization", None, "acme")["status"]
    assert status == {
        "userCount": 4,
        "adminCount": 2,
        "monthlyCost": {"amount": "11.00", "currency": "EUR"},
        "balance": {"amount": "0.00", "currency": "EUR"},
    }
    after = acme.deposit(ROOT, "acme", "50")
    acme.deposit(ROOT, "acme", "0.05")
    assert after["status"]["balance"] == {"amount": "50.00", "currency": "EUR"}
    assert acme.get(ROOT, "Organization", None, "acme")["status"]["balance"]["amount"] == "50.05"


@pytest.mark.parametrize("amount", ["-5", "0", "abc", "1.001", "NaN", "Infinity", 1.5, None, "99999999", "1e999999"])
def test_invalid_deposits_are_refused(acme: Service, amount: object) -> None:
    with refused(422, path="amount"):
        acme.deposit(ROOT, "acme", amount)


def test_prices_are_configurable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    service = Service(f"sqlite:///{tmp_path / 'p.db'}", prices={"entry": "4.00", "pro": "8"})
    assert service.prices() == {"currency": "EUR", "subscriptions": {"free": "0.00", "entry": "4.00", "pro": "8.00"}}
    service.create(ROOT, "Organization", None, org("acme"))
    service.create(ROOT, "User", "acme", user("acme", "a", subscription="entry"))
    service.create(ROOT, "User", "acme", user("acme", "b", subscription="pro"))
    assert service.get(ROOT, "Organization", None, "acme")["status"]["monthlyCost"]["amount"] == "12.00"
    with pytest.raises(ValueError, match="unknown subscription tier 'gold'"):
        Service(f"sqlite:///{tmp_path / 'p.db'}", prices={"gold": "1"})


# --- active and username (SPEC §2) ----------------------------------------------------------------


def test_a_username_is_the_email_unless_given_and_unique_across_the_backend_ignoring_case(acme: Service) -> None:
    assert acme.get(ROOT, "User", "acme", "bob")["spec"]["username"] == "bob@acme.example"
    carl = acme.create(ROOT, "User", "acme", user("acme", "carl", username="Carl.Smith"))
    assert carl["spec"]["username"] == "Carl.Smith"
    acme.create(ROOT, "Organization", None, org("beta"))
    with refused(
        409, "username 'carl.smith' is already used by a resource of another organization", path="spec.username"
    ):
        acme.create(Scope.of_organization("beta"), "User", "beta", user("beta", "carl", username="carl.smith"))
    with refused(409, "username 'BOB@acme.example' is already used by User acme/bob", path="spec.username"):
        acme.create(ROOT, "User", "acme", user("acme", "dan", username="BOB@acme.example"))
    renamed = acme.update(ROOT, "User", "acme", "carl", {**carl, "spec": {**carl["spec"], "username": "carl"}})
    acme.create(ROOT, "User", "acme", user("acme", "dan", username="Carl.Smith"))  # released by the rename
    assert renamed["spec"]["username"] == "carl"


def test_a_suspended_user_keeps_its_mailbox_and_is_still_billed(acme: Service) -> None:
    acme.create(ROOT, "MailboxQuota", "acme", quota("acme", "main", max_addresses=5))
    active = acme.create(ROOT, "User", "acme", user("acme", "carl", subscription="pro"))
    before = acme.get(ROOT, "Organization", None, "acme")["status"]["monthlyCost"]
    suspended = acme.update(ROOT, "User", "acme", "carl", {**active, "spec": {**active["spec"], "active": False}})
    assert suspended["spec"]["active"] is False
    assert suspended["status"]["mailbox"] is True
    assert (
        acme.get(ROOT, "Organization", None, "acme")["status"]["monthlyCost"]
        == before
        == {"amount": "7.50", "currency": "EUR"}
    )
    assert acme.get(ROOT, "MailboxQuota", "acme", "main")["status"]["usedAddresses"] == 3
