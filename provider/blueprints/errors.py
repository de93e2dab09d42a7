"""What can go wrong while expanding, as values that carry where (the template's field) and why.

Expansion raises `ExpansionError` at the first problem of one resource of one Tenant; `provider.blueprints
.expand` turns it into a finding at the Tenant's file:line:col that names the blueprint's file:line.
"""

from __future__ import annotations

from tenancy_kinds.messages import FieldPath

MAX_RESOURCES_PER_TENANT = 10_000  # resources one Tenant may expand to (forEach included)
MAX_VALUES_PER_TENANT = 1_000_000  # values one Tenant's resources may hold in all (inserted lists counted)
MAX_STRING = 65_536  # characters of one interpolated string
MAX_EXPRESSION = 500  # characters between ${ and }
MAX_SEGMENTS = 64  # parts of one path


class ExpansionError(Exception):
    """One resource of one Tenant cannot be expanded. `path`: the template field it is about."""

    def __init__(self, message: str, path: FieldPath = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def at(self, path: FieldPath) -> ExpansionError:
        """The same error, about a field deeper in the template (set once, by the innermost caller)."""
        return self if self.path else ExpansionError(self.message, path)


def too_many_resources(count: int) -> str:
    return (f"expands to {count:,} resources, more than the {MAX_RESOURCES_PER_TENANT:,} one Tenant may make; "
            "split the customer into several Tenants")


def too_many_values() -> str:
    return (f"expands to more than {MAX_VALUES_PER_TENANT:,} values; a whole-value expression that inserts a big "
            "list into every item of a forEach multiplies it: insert less, or split the Tenant")


__all__ = [
    "MAX_EXPRESSION",
    "MAX_RESOURCES_PER_TENANT",
    "MAX_SEGMENTS",
    "MAX_STRING",
    "MAX_VALUES_PER_TENANT",
    "ExpansionError",
    "too_many_resources",
    "too_many_values",
]
