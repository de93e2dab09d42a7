"""A tenant declared in code (`pulumi-demo`) and one declared in YAML (`../family`), in one Pulumi stack.

The YAML is the same the CLI applies (`tenancy apply examples/family`): one set of manifests serves both
tools. Point the two at different backends, or import instead of creating what the CLI already made.
"""

import pulumi
from pulumi import ResourceOptions

from provider.pulumi import Alias, CustomerSubscription, MailboxQuota, Organization, Team, User, from_manifests

config = pulumi.Config()

demo = Organization(
    "pulumi-demo",
    display_name="Pulumi Demo",
    plan="entry",
    edition="professional",
    domains=["pulumi-demo.example"],
    billing_address={
        "name": "Pulumi Demo GmbH",
        "street": "Beispielweg 1",
        "postal_code": "10115",
        "city": "Berlin",
        "country": "DE",
    },
    labels={"managed-by": "pulumi"},
)

# Room on the domain before the mailboxes that use it (the CLI orders it the same way).
quota = MailboxQuota("pulumi-demo/main", name="main", organization=demo, domain="pulumi-demo.example", max_addresses=10)
mailboxes = ResourceOptions(depends_on=[quota])

ada = User(
    "pulumi-demo/ada",
    name="ada",
    organization=demo,
    email="ada@pulumi-demo.example",
    display_name="Ada Lovelace",
    role="administrator",
    subscription="pro",
    password=config.require_secret("adaPassword"),  # a Pulumi secret; never an output in clear
    password_version=1,  # bump to send a new password
    opts=mailboxes,
)
grace = User(
    "pulumi-demo/grace",
    name="grace",
    organization=demo,
    email="grace@pulumi-demo.example",
    display_name="Grace Hopper",
    subscription="entry",
    opts=mailboxes,
)

Team(
    "pulumi-demo/platform",
    name="platform",
    organization=demo,
    display_name="Platform",
    members=[ada.name, grace.name],
    leader=ada.name,
    shares=["calendars", "documents"],
)
Alias("pulumi-demo/hello", name="hello", organization=demo, address="hello@pulumi-demo.example", user=ada.name)
signatures = CustomerSubscription(
    "pulumi-demo/contoso",
    name="contoso",
    organization=demo,
    product="signatures-microsoft-365",
    customer_name="Contoso Ltd",
    users=25,
)

# The family example's manifests, as Pulumi resources (passwords resolved into secrets).
family = from_manifests("../family")

pulumi.export("organization_uid", demo.uid)
pulumi.export("monthly_cost", demo.monthly_cost)
pulumi.export("trial_ends_at", signatures.trial_ends_at)
pulumi.export("family", sorted(str(key) for key in family))
