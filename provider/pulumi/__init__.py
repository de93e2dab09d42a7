"""Pulumi resources for the tenancy backend, generated from the table of kinds.

    from provider.pulumi import Organization, User, Team, MailboxQuota, Alias, CustomerSubscription
    from provider.pulumi import from_manifests

Backend and token come from Pulumi config (`tenancy:backend`, secret `tenancy:token`) or the CLI's
environment variables (`TENANCY_BACKEND`, `TENANCY_TOKEN`). See docs/pulumi.md.
"""

from __future__ import annotations

from provider.pulumi.manifests import from_manifests
from provider.pulumi.resources import RESOURCES

Organization = RESOURCES["Organization"]
User = RESOURCES["User"]
Team = RESOURCES["Team"]
MailboxQuota = RESOURCES["MailboxQuota"]
Alias = RESOURCES["Alias"]
CustomerSubscription = RESOURCES["CustomerSubscription"]

__all__ = ["Alias", "CustomerSubscription", "MailboxQuota", "Organization", "Team", "User", "from_manifests"]
