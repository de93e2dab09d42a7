"""The SCIM operations on one organization: parse with scim2-models, map, and one service write per request.

Every write is one call of the service layer (create, update, delete, or a changeset when deprovisioning
a user also takes it out of its teams), so every rule of SPEC §2 is judged by the same code as for /v1,
in one transaction. What a write depends on is read before it and then carried as `If-Match` by the
write itself: a concurrent change makes the write fail instead of being overwritten, and, unless the
client sent its own If-Match, the request is read and tried again (at most ATTEMPTS times).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from scim2_models import (
    Context,
    ListResponse,
    NotFoundException,
    PatchOp,
    Resource,
    ScimPolicy,
    SearchRequest,
)

from tenancy_backend.errors import PreconditionFailed
from tenancy_backend.scim import mapping
from tenancy_backend.scim.mapping import Place, Written
from tenancy_backend.scim.models import Group as ScimGroup
from tenancy_backend.scim.models import RESOURCE_TYPE_OF, SCIM_GROUP, SCIM_USER
from tenancy_backend.scim.models import User as ScimUser
from tenancy_backend.scim.queries import narrowing, page
from tenancy_backend.scope import Scope
from tenancy_backend.reads import MAX_LIMIT
from tenancy_backend.service import Service

ATTEMPTS = 3
T = TypeVar("T")

# What identity providers send, read as they mean it: attributes this server does not serve are dropped
# (IdPs send many: the schema says what is kept), and a `remove` carrying a value removes that value
# (as Microsoft Entra removes group members).
POLICY = ScimPolicy(unknown=ScimPolicy.Unknown.ignore, remove_value_as_filter=ScimPolicy.RemoveValue.apply)


@dataclass(frozen=True)
class Result:
    """A resource after a request, with the document it stands for (its ETag)."""

    resource: Any  # ScimUser | ScimGroup (scim2-models' generics do not narrow)
    document: dict[str, Any]


class Tenant:
    """One organization's SCIM resources, as one caller (its scope) sees them."""

    def __init__(self, service: Service, scope: Scope, organization: str, place: Place) -> None:
        self.service = service
        self.scope = scope
        self.organization = organization
        self.place = place

    # --- reading ---------------------------------------------------------------------------------

    def require(self) -> dict[str, Any]:
        """The organization's document; NotFound when it does not exist or lies outside the scope."""
        return self.service.get(self.scope, "Organization", None, self.organization)

    def everything(self, kind: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            found = self.service.list(self.scope, kind, self.organization, limit=MAX_LIMIT, cursor=cursor)
            items.extend(found.items)
            if found.next_cursor is None:
                return items
            cursor = found.next_cursor

    def one(self, kind: str, uid: str) -> dict[str, Any]:
        found = self.service.find(self.scope, kind, self.organization, uids=[uid])
        if not found:
            resource_type = RESOURCE_TYPE_OF[kind]
            raise NotFoundException(detail=f"{resource_type} {uid!r} not found in organization {self.organization!r}")
        return found[0]

    def _uids(self, names: list[str] | None = None) -> dict[str, str]:
        """user name → id, for the given names (all users when None)."""
        users = self.everything("User") if names is None else self.service.find(
            self.scope, "User", self.organization, names=names
        )
        return {u["metadata"]["name"]: mapping.uid_of(u) for u in users}

    def _names(self, uids: list[str]) -> dict[str, str]:
        users = self.service.find(self.scope, "User", self.organization, uids=uids)
        return {mapping.uid_of(u): u["metadata"]["name"] for u in users}

    def user(self, uid: str) -> Result:
        document = self.one("User", uid)
        return Result(mapping.user_resource(document, self.place), document)

    def group(self, uid: str) -> Result:
        document = self.one("Team", uid)
        uids = self._uids(list(document["spec"].get("members", [])))
        return Result(mapping.group_resource(document, uids, self.place), document)

    def users(self, request: SearchRequest[Any]) -> ListResponse[Any]:
        return self.search(request, (SCIM_USER,))

    def groups(self, request: SearchRequest[Any]) -> ListResponse[Any]:
        return self.search(request, (SCIM_GROUP,))

    def search(self, request: SearchRequest[Any], resource_types: tuple[str, ...]) -> ListResponse[Any]:
        """A search over one resource type or, at the root, both (RFC 7644 §3.4.3)."""
        self.require()
        resources: list[Resource[Any]] = []
        if SCIM_USER in resource_types:
            users = self._users_for(request) if resource_types == (SCIM_USER,) else self.everything("User")
            resources.extend(mapping.user_resource(d, self.place) for d in users)
        if SCIM_GROUP in resource_types:
            teams = self.everything("Team")
            uids = self._uids() if any(t["spec"].get("members") for t in teams) else {}
            resources.extend(mapping.group_resource(t, uids, self.place) for t in teams)
        model: Any = ScimUser if resource_types == (SCIM_USER,) else ScimGroup if resource_types == (SCIM_GROUP,) else (
            ScimUser | ScimGroup
        )
        return page(model, resources, request)

    def _users_for(self, request: SearchRequest[Any]) -> list[dict[str, Any]]:
        """The users a search may match: those an index finds for it, else all of them."""
        narrowed = narrowing(request)
        if narrowed is None:
            return self.everything("User")
        return self.service.find(self.scope, "User", self.organization, uids=narrowed.uids, unique=narrowed.unique)

    # --- users -----------------------------------------------------------------------------------

    def create_user(self, payload: Any) -> Result:
        resource = ScimUser.model_validate(
            mapping.with_user_defaults(payload), scim_ctx=Context.RESOURCE_CREATION_REQUEST, scim_policy=POLICY
        )
        domains = list(self.require()["spec"].get("domains", []))
        written = mapping.user_document(resource, self.organization, domains)
        document = self.service.create(
            self.scope, "User", self.organization, written.document, unique_name=True, directory=written.directory
        )
        return Result(mapping.user_resource(document, self.place), document)

    def replace_user(self, uid: str, payload: Any, if_match: str | None) -> Result:
        def attempt() -> Result:
            stored = self.user(uid)
            resource = ScimUser.model_validate(
                mapping.with_user_defaults(payload, stored.resource),
                scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST,
                scim_policy=POLICY,
            )
            mapping.same_address(resource, stored.resource)
            resource.replace(stored.resource)  # immutable emails: MutabilityException when changed
            return self._write_user(stored, resource, if_match)

        return _retrying(attempt, if_match)

    def patch_user(self, uid: str, payload: Any, if_match: str | None) -> Result:
        patch = PatchOp[ScimUser].model_validate(payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=POLICY)

        def attempt() -> Result:
            stored = self.user(uid)
            resource = stored.resource.model_copy(deep=True)
            patch.patch(resource, scim_policy=POLICY)  # immutable emails, required attributes: refused here
            return self._write_user(stored, resource, if_match)

        return _retrying(attempt, if_match)

    def _write_user(self, stored: Result, resource: ScimUser, if_match: str | None) -> Result:
        domains: list[str] = []  # only read on creation (the role follows the address then)
        written = mapping.user_document(
            resource, self.organization, domains, current=stored.document, before=stored.resource
        )
        document = self._update("User", stored.document, written, if_match)
        return Result(mapping.user_resource(document, self.place), document)

    def delete_user(self, uid: str, if_match: str | None) -> None:
        """Deprovision a user: it goes, and leaves its teams, in one changeset (If-Match first). What else
        still names it (an alias the platform team declared) makes the service refuse the whole change."""

        def attempt() -> None:
            document = self.one("User", uid)
            name = document["metadata"]["name"]
            teams = [
                t for t in self.everything("Team")
                if name in t["spec"].get("members", []) or t["spec"].get("leader") == name
            ]
            delete = {
                "op": "delete", "kind": "User", "organization": self.organization, "name": name,
                "ifMatch": if_match or document["metadata"]["resourceVersion"],
            }
            # References are judged at the end of a changeset: the user may go before its teams let go.
            operations = [delete] + [_update_operation(mapping.without_member(t, name), t) for t in teams]
            self.service.changeset(self.scope, operations)

        _retrying(attempt, if_match)

    # --- groups ----------------------------------------------------------------------------------

    def create_group(self, payload: Any) -> Result:
        resource = ScimGroup.model_validate(payload, scim_ctx=Context.RESOURCE_CREATION_REQUEST, scim_policy=POLICY)
        self.require()
        written = mapping.group_document(resource, self.organization, self._names(mapping.member_ids(resource)))
        document = self.service.create(
            self.scope, "Team", self.organization, written.document, unique_name=True, directory=written.directory
        )
        return self._group_result(document)

    def replace_group(self, uid: str, payload: Any, if_match: str | None) -> Result:
        def attempt() -> Result:
            stored = self.group(uid)
            resource = ScimGroup.model_validate(
                payload, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST, scim_policy=POLICY
            )
            resource.replace(stored.resource)
            return self._write_group(stored, resource, if_match)

        return _retrying(attempt, if_match)

    def patch_group(self, uid: str, payload: Any, if_match: str | None) -> Result:
        patch = PatchOp[ScimGroup].model_validate(payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=POLICY)

        def attempt() -> Result:
            stored = self.group(uid)
            resource = stored.resource.model_copy(deep=True)
            patch.patch(resource, scim_policy=POLICY)
            return self._write_group(stored, resource, if_match)

        return _retrying(attempt, if_match)

    def _write_group(self, stored: Result, resource: ScimGroup, if_match: str | None) -> Result:
        names = self._names(mapping.member_ids(resource))
        written = mapping.group_document(resource, self.organization, names, current=stored.document)
        return self._group_result(self._update("Team", stored.document, written, if_match))

    def _group_result(self, document: dict[str, Any]) -> Result:
        uids = self._uids(list(document["spec"].get("members", [])))
        return Result(mapping.group_resource(document, uids, self.place), document)

    def delete_group(self, uid: str, if_match: str | None) -> None:
        def attempt() -> None:
            document = self.one("Team", uid)
            version = if_match or document["metadata"]["resourceVersion"]
            self.service.delete(self.scope, "Team", self.organization, document["metadata"]["name"], version)

        _retrying(attempt, if_match)

    # --- helpers ---------------------------------------------------------------------------------

    def _update(self, kind: str, stored: Mapping[str, Any], written: Written, if_match: str | None) -> dict[str, Any]:
        name = stored["metadata"]["name"]
        version = if_match or stored["metadata"]["resourceVersion"]
        return self.service.update(
            self.scope, kind, self.organization, name, written.document, version, directory=written.directory
        )


def _update_operation(document: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    metadata = stored["metadata"]
    return {
        "op": "update", "kind": stored["kind"], "organization": metadata["organization"], "name": metadata["name"],
        "document": dict(document), "ifMatch": metadata["resourceVersion"],
    }


def _retrying(attempt: Callable[[], T], if_match: str | None) -> T:
    """`attempt()`, again while a concurrent change beat it (412) and the client sent no If-Match of its own."""
    for n in range(1, ATTEMPTS + 1):
        try:
            return attempt()
        except PreconditionFailed:
            if if_match is not None or n == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


__all__ = ["ATTEMPTS", "POLICY", "Result", "Tenant"]
