"""List queries (RFC 7644 §3.4.2): filter, sortBy/sortOrder, startIndex/count, attributes/excludedAttributes.

scim2-models parses and checks every parameter against the served model (`SearchRequest[Model]`: an
unknown attribute or a malformed filter is `invalidFilter`) and evaluates the filter on each resource,
with SCIM's case rules (`userName` ignores case, `externalId` and ids do not). Pure: resources in, a page out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scim2_models import (
    Context,
    InvalidValueException,
    ListResponse,
    Resource,
    ResponseParameters,
    SearchRequest,
)
from scim2_models.path import CompareOperator, Comparison, LogicalExpr, LogicalOperator

from tenancy_backend.scim.models import MAX_RESULTS, USER_SCHEMA

DEFAULT_COUNT = 100
_SEARCH_PARAMETERS = {
    "filter": "filter",
    "sortby": "sortBy",
    "sortorder": "sortOrder",
    "startindex": "startIndex",
    "count": "count",
    "attributes": "attributes",
    "excludedattributes": "excludedAttributes",
}
_INTEGERS = ("startIndex", "count")


def _parameters(query: Mapping[str, str]) -> dict[str, Any]:
    """The SCIM query parameters (their names ignore case, as SCIM attribute names do)."""
    out: dict[str, Any] = {}
    for key, value in query.items():
        name = _SEARCH_PARAMETERS.get(key.lower())
        if name is None:
            continue
        if name in _INTEGERS:
            try:
                out[name] = int(value)
            except ValueError:
                raise InvalidValueException(detail=f"{name} must be an integer (got {value[:40]!r})") from None
        else:
            out[name] = value
    return out


def search_request(model: type[Resource[Any]], query: Mapping[str, str]) -> SearchRequest[Any]:
    """The list request of a query string, checked against the model (InvalidFilter, InvalidValue...)."""
    request_type: Any = SearchRequest[model]  # type: ignore[valid-type]
    request: SearchRequest[Any] = request_type.model_validate(_parameters(query), scim_ctx=Context.SEARCH_REQUEST)
    return request


def search_body(model: Any, body: Any) -> SearchRequest[Any]:
    """The SearchRequest a POST .search carries (RFC 7644 §3.4.3), checked against the model(s)."""
    request_type: Any = SearchRequest[model]
    request: SearchRequest[Any] = request_type.model_validate(body, scim_ctx=Context.SEARCH_REQUEST)
    return request


def response_parameters(model: type[Resource[Any]], query: Mapping[str, str]) -> ResponseParameters[Any]:
    """`attributes` / `excludedAttributes` of a request that returns one resource."""
    wanted = {k: v for k, v in _parameters(query).items() if k in ("attributes", "excludedAttributes")}
    parameters_type: Any = ResponseParameters[model]  # type: ignore[valid-type]
    parameters: ResponseParameters[Any] = parameters_type.model_validate(wanted)
    return parameters


@dataclass(frozen=True)
class Narrowing:
    """The few resources a filter can match, found by an index: by id, or by a unique value (spec field)."""

    uids: tuple[str, ...] = ()
    unique: tuple[tuple[str, str], ...] = ()


# Attributes (lowercase, with their sub-attribute) whose equality an index answers: the id, and the
# values a User holds uniquely across the backend; both ignore case as SCIM does for them, but for ids.
_INDEXED = {("id", None): "", ("username", None): "username", ("emails", "value"): "email", ("emails", None): "email"}


def narrowing(request: SearchRequest[Any]) -> Narrowing | None:
    """What an `eq` on an indexed attribute, alone or in an `and`, narrows a User search to (an IdP looks
    every person up by userName); None when the filter needs every resource. The filter still decides:
    this only spares reading what it cannot match."""
    if request.filter is None:
        return None
    node = request.filter.ast
    terms = node.terms if isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_ else (node,)
    for term in terms:
        if not (isinstance(term, Comparison) and term.op == CompareOperator.eq and isinstance(term.value, str)):
            continue
        path = term.attr_path
        field = _INDEXED.get((path.attr.lower(), path.sub_attr.lower() if path.sub_attr else None))
        # Beyond ASCII, SCIM compares in Unicode's normal form and the index does not: no shortcut there.
        if field is None or path.uri not in (None, USER_SCHEMA) or not term.value.isascii():
            continue
        return Narrowing(uids=(term.value,)) if field == "" else Narrowing(unique=((field, term.value),))
    return None


def page(model: Any, resources: Sequence[Resource[Any]], request: SearchRequest[Any]) -> ListResponse[Any]:
    """The matching resources, sorted, one page of them (count at most MAX_RESULTS)."""
    matching = [r for r in resources if request.filter is None or request.filter.match(r, strict=True)]
    ordered = request.sort(matching)
    count = min(MAX_RESULTS, DEFAULT_COUNT if request.count is None else request.count)
    start = request.start_index_0 or 0
    shown = ordered[start : start + count]
    response_type: Any = ListResponse[model]
    response: ListResponse[Any] = response_type(
        total_results=len(matching), start_index=start + 1, items_per_page=len(shown), resources=shown
    )
    return response


__all__ = ["DEFAULT_COUNT", "Narrowing", "narrowing", "page", "response_parameters", "search_body", "search_request"]
