"""Pulumi resources generated from the table of kinds: one factory, one `pulumi.dynamic.Resource` per kind.

    Kind(resource_name, *, name=None, <spec fields in snake_case>, organization=None, labels=None,
         protected=None, opts=None)

`name` (metadata.name) defaults to `resource_name`; `organization` (every kind but Organization) is a
name, an Output of one, or the Organization resource itself. Outputs: every input, plus `uid`,
`resource_version` and the kind's status fields (`user_count`, `monthly_cost`, `trial_ends_at`, ...).
Write-only fields (a User's `password`) are Pulumi secrets on the way in and never an output in clear.
"""

from __future__ import annotations

import inspect
import types
from typing import Any

import pulumi
from pulumi import dynamic

from tenancy_kinds import KINDS, Kind, to_snake
from provider.pulumi import properties as P
from provider.pulumi.providers import TenancyProvider

MODULE = "tenancy"  # type tokens read `pulumi-python:dynamic/tenancy:<Kind>`


def signature(kind: Kind) -> inspect.Signature:
    """The keyword-only signature of a kind's constructor, read from the table."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    required = {to_snake(f.alias or n) for n, f in kind.spec.model_fields.items() if f.is_required()}
    params = [inspect.Parameter("resource_name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str)]
    for prop in P.input_properties(kind):
        default = inspect.Parameter.empty if prop in required else None
        params.append(inspect.Parameter(prop, keyword, default=default, annotation="pulumi.Input[Any]"))
    params.append(inspect.Parameter("opts", keyword, default=None, annotation="pulumi.ResourceOptions | None"))
    return inspect.Signature(params)


def _organization_name(value: Any) -> Any:
    """An Organization resource stands for its name (and brings the dependency along)."""
    if not isinstance(value, pulumi.CustomResource):  # (an Output lifts any attribute: ask resources only)
        return value
    kind = getattr(value, "tenancy_kind", None)
    if kind is not None and not kind.scoped:
        return value.name  # type: ignore[attr-defined]
    return value


def _init(kind: Kind, sig: inspect.Signature) -> Any:
    secrets = P.secret_properties(kind)

    def __init__(self: dynamic.Resource, *args: Any, **kwargs: Any) -> None:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        resource_name, opts = values.pop("resource_name"), values.pop("opts")
        values["name"] = resource_name if values.get("name") is None else values["name"]
        if kind.scoped:
            values["organization"] = _organization_name(values.get("organization"))
        for prop in secrets:
            if values.get(prop) is not None:
                values[prop] = pulumi.Output.secret(values[prop])
        props: dict[str, Any] = {**values, **dict.fromkeys(P.output_properties(kind))}
        if secrets:
            opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=secrets))
        dynamic.Resource.__init__(self, TenancyProvider(kind.name), resource_name, props, opts)

    __init__.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY), *sig.parameters.values()]
    )
    __init__.__doc__ = f"A tenancy {kind.name}: arguments mirror its spec ({', '.join(P.spec_properties(kind))})."
    return __init__


def resource_class(kind: Kind) -> type[dynamic.Resource]:
    """The Pulumi resource class of a kind."""
    P.check_table(kind)
    sig = signature(kind)

    def body(namespace: dict[str, Any]) -> None:
        namespace.update(
            {
                "__init__": _init(kind, sig),
                "__module__": "provider.pulumi",
                "__qualname__": kind.name,
                "__doc__": f"A tenancy {kind.name} as a Pulumi resource (see `provider.pulumi.resources`).",
                "tenancy_kind": kind,
            }
        )

    return types.new_class(kind.name, (dynamic.Resource,), {"module": MODULE, "name": kind.name}, body)


RESOURCES: dict[str, type[dynamic.Resource]] = {name: resource_class(kind) for name, kind in KINDS.items()}
