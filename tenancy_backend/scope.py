"""Who is asking: the part of the organization tree a caller sees, and its rights."""

from __future__ import annotations

from dataclasses import dataclass

ROOT_PRINCIPAL = "root"


@dataclass(frozen=True)
class Scope:
    """A caller's reach: `organization` and everything below it (None: the whole backend).

    `principal` identifies the caller for idempotency keys and rate limits ("root" for embedded mode,
    "token:<id>" for API tokens). `legal_representative` is the right to grant that role.
    """

    organization: str | None = None
    legal_representative: bool = False
    principal: str = ROOT_PRINCIPAL

    @classmethod
    def root(cls, legal_representative: bool = True) -> Scope:
        return cls(None, legal_representative, ROOT_PRINCIPAL)

    @classmethod
    def of_organization(
        cls, organization: str, *, legal_representative: bool = False, principal: str | None = None
    ) -> Scope:
        return cls(organization, legal_representative, principal or f"organization:{organization}")

    @property
    def is_root(self) -> bool:
        return self.organization is None

    def describe(self) -> str:
        return "a root token" if self.is_root else f"a token scoped to organization {self.organization!r}"


__all__ = ["ROOT_PRINCIPAL", "Scope"]
