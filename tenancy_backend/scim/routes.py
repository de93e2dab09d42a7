"""The SCIM 2.0 HTTP surface under /scim/v2/{org} (SPEC §8): a FastAPI application mounted by the API.

Thin routes: read the request (path, query, If-Match, a size-limited JSON body), call `Tenant` in a worker
thread, and answer `application/scim+json`: resources with `ETag` (= meta.version), errors as SCIM Error
documents. Every route, discovery included, needs a token that sees the organization (the same tokens
and scopes as /v1: 401 without one, 404 outside its scope); a method a path does not have is 405 for
everybody, and a path that does not exist is a SCIM 404.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, some of them local.
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from scim2_models import (
    Context,
    InvalidSyntaxException,
    ListResponse,
    NotFoundException,
    PayloadTooLargeException,
    Resource,
    ResourceType,
    ResponseParameters,
    Schema,
    SCIMException,
)
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenancy_backend.errors import ServiceError
from tenancy_backend.scim import PREFIX, errors, models
from tenancy_backend.scim.mapping import Place, etag
from tenancy_backend.scim.provisioning import Result, Tenant
from tenancy_backend.scim.queries import (
    response_parameters,
    search_body,
    search_request,
)
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ScopeDependency = Callable[..., Awaitable[Scope]]
SEARCH = "/.search"

# Every path of an organization's SCIM root and the methods it has; any other method is 405.
PATHS: dict[str, tuple[str, ...]] = {
    "/{org}/ServiceProviderConfig": ("GET",),
    "/{org}/ResourceTypes": ("GET",),
    "/{org}/ResourceTypes/{item}": ("GET",),
    "/{org}/Schemas": ("GET",),
    "/{org}/Schemas/{item}": ("GET",),
    "/{org}/.search": ("POST",),
    "/{org}/Users/.search": ("POST",),
    "/{org}/Groups/.search": ("POST",),
    "/{org}/Users": ("GET", "POST"),
    "/{org}/Users/{item}": ("GET", "PUT", "PATCH", "DELETE"),
    "/{org}/Groups": ("GET", "POST"),
    "/{org}/Groups/{item}": ("GET", "PUT", "PATCH", "DELETE"),
}


# --- responses ------------------------------------------------------------------------------------


def _scim_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers, media_type=errors.SCIM_JSON)


def _resource_response(
    result: Result, context: Context, parameters: "ResponseParameters[Any] | None" = None, status: int = 200
) -> JSONResponse:
    body = result.resource.model_dump(scim_ctx=context, response_parameters=parameters)
    headers = {"ETag": etag(result.document)}
    if status == 201 and result.resource.meta is not None and result.resource.meta.location:
        headers["Location"] = result.resource.meta.location
    return _scim_json(body, status, headers)


def _list_response(found: "ListResponse[Any]", parameters: "ResponseParameters[Any] | None" = None) -> JSONResponse:
    return _scim_json(found.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=parameters))


async def _body(request: Request) -> Any:
    """The JSON body, at most MAX_BODY_BYTES (whatever the Content-Type says: SCIM clients send
    application/scim+json, some application/json)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLargeException(detail=f"the request body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise InvalidSyntaxException(detail="the request body is empty; send a SCIM JSON document")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        reason = f": {e}" if isinstance(e, json.JSONDecodeError) else ""
        raise InvalidSyntaxException(detail=f"the body is not valid JSON{reason}") from None


# --- errors ---------------------------------------------------------------------------------------


def _on_service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if exc.status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc.detail)
    return errors.error_response(errors.service_error(exc), exc.headers)


def _on_scim_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SCIMException)
    return errors.error_response(errors.scim_error(exc))


def _on_invalid_payload(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError)
    return errors.error_response(errors.validation_error(exc))


def _on_invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if any(tuple(e.get("loc", ()))[:2] == ("path", "org") for e in exc.errors()):
        return errors.error_response(errors.simple_error(404, "no such organization: its name is a lowercase slug"))
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', 'invalid')}" for e in exc.errors()[:3]
    )
    return errors.error_response(errors.simple_error(400, f"invalid request: {problems}", "invalidValue"))


def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = f"no such SCIM endpoint: {request.url.path}" if exc.status_code == 404 else str(exc.detail)
    return errors.error_response(errors.simple_error(exc.status_code, detail), exc.headers)


def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error on %s %s (%s)", request.method, request.url.path, type(exc).__name__)
    return errors.error_response(errors.simple_error(500, "internal error; it was logged on the server"))


# --- the application ------------------------------------------------------------------------------


def build_scim_app(state: State, scope_dependency: ScopeDependency) -> FastAPI:
    """The SCIM application, to mount at PREFIX; it shares the API's state (its service, its limits) and
    its authentication dependency."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
    app.state = state
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(SCIMException, _on_scim_error)
    app.add_exception_handler(ValidationError, _on_invalid_payload)
    app.add_exception_handler(RequestValidationError, _on_invalid_request)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
    _register(app, scope_dependency)
    _register_refusals(app, scope_dependency)
    return app


def _tenant(request: Request, scope: Scope, org: str) -> Tenant:
    service: Service | None = request.app.state.service
    if service is None:
        raise ServiceError("this application was built for its OpenAPI document only")
    # root_path ends with the mount point (/scim/v2), behind whatever prefix a proxy gave the whole API
    base = f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}/{org}"
    return Tenant(service, scope, org, Place(base))


def _register(app: FastAPI, scope_dependency: ScopeDependency) -> None:
    ScopeDep = Annotated[Scope, Depends(scope_dependency)]

    def if_match(request: Request) -> str | None:
        return request.headers.get("if-match")

    @app.get("/{org}/ServiceProviderConfig")
    async def service_provider_config(request: Request, scope: ScopeDep, org: str) -> Response:
        tenant = _tenant(request, scope, org)
        await run_in_threadpool(tenant.require)
        config = models.service_provider_config()
        config.meta = models.meta("ServiceProviderConfig", f"{tenant.place.base}/ServiceProviderConfig")
        return _scim_json(config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))

    @app.get("/{org}/ResourceTypes")
    async def list_resource_types(request: Request, scope: ScopeDep, org: str) -> Response:
        types = await _discovered(request, scope, org, "ResourceTypes", models.resource_types())
        return _list_response(ListResponse[ResourceType](total_results=len(types), start_index=1,
                                                         items_per_page=len(types), resources=types))

    @app.get("/{org}/ResourceTypes/{item}")
    async def get_resource_type(request: Request, scope: ScopeDep, org: str, item: str) -> Response:
        types = await _discovered(request, scope, org, "ResourceTypes", models.resource_types())
        return _scim_json(_by_id(types, item, "resource type").model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))

    @app.get("/{org}/Schemas")
    async def list_schemas(request: Request, scope: ScopeDep, org: str) -> Response:
        schemas = await _discovered(request, scope, org, "Schemas", models.served_schemas())
        return _list_response(ListResponse[Schema](total_results=len(schemas), start_index=1,
                                                   items_per_page=len(schemas), resources=schemas))

    @app.get("/{org}/Schemas/{item}")
    async def get_schema(request: Request, scope: ScopeDep, org: str, item: str) -> Response:
        schemas = await _discovered(request, scope, org, "Schemas", models.served_schemas())
        return _scim_json(_by_id(schemas, item, "schema").model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))

    @app.post("/{org}/.search")
    async def search_everything(request: Request, scope: ScopeDep, org: str) -> Response:
        tenant = _tenant(request, scope, org)
        search = search_body(models.User | models.Group, await _body(request))
        found = await run_in_threadpool(tenant.search, search, tuple(models.SERVED))
        return _list_response(found, search)

    _refuse_other_methods(app, "/{org}" + SEARCH)

    for resource_type, model in models.SERVED.items():
        _register_resource(app, scope_dependency, resource_type, model, if_match)


def _register_resource(
    app: FastAPI,
    scope_dependency: ScopeDependency,
    resource_type: str,
    model: type[Resource[Any]],
    if_match: Callable[[Request], str | None],
) -> None:
    """The five operations of one resource type (Users or Groups)."""
    ScopeDep = Annotated[Scope, Depends(scope_dependency)]
    endpoint = models.ENDPOINTS[resource_type]
    users = resource_type == models.SCIM_USER

    @app.get(f"/{{org}}/{endpoint}")
    async def list_(request: Request, scope: ScopeDep, org: str) -> Response:
        tenant = _tenant(request, scope, org)
        search = search_request(model, request.query_params)
        found = await run_in_threadpool(tenant.users if users else tenant.groups, search)
        return _list_response(found, search)

    @app.post(f"/{{org}}/{endpoint}/.search")
    async def search(request: Request, scope: ScopeDep, org: str) -> Response:
        tenant = _tenant(request, scope, org)
        found_search = search_body(model, await _body(request))
        found = await run_in_threadpool(tenant.search, found_search, (resource_type,))
        return _list_response(found, found_search)

    _refuse_other_methods(app, f"/{{org}}/{endpoint}{SEARCH}")

    @app.post(f"/{{org}}/{endpoint}")
    async def create(request: Request, scope: ScopeDep, org: str) -> Response:
        tenant = _tenant(request, scope, org)
        parameters = response_parameters(model, request.query_params)
        payload = await _body(request)
        result = await run_in_threadpool(tenant.create_user if users else tenant.create_group, payload)
        return _resource_response(result, Context.RESOURCE_CREATION_RESPONSE, parameters, 201)

    @app.get(f"/{{org}}/{endpoint}/{{item}}")
    async def get(request: Request, scope: ScopeDep, org: str, item: str) -> Response:
        tenant = _tenant(request, scope, org)
        parameters = response_parameters(model, request.query_params)
        result = await run_in_threadpool(tenant.user if users else tenant.group, item)
        return _resource_response(result, Context.RESOURCE_QUERY_RESPONSE, parameters)

    @app.put(f"/{{org}}/{endpoint}/{{item}}")
    async def replace(request: Request, scope: ScopeDep, org: str, item: str) -> Response:
        tenant = _tenant(request, scope, org)
        parameters = response_parameters(model, request.query_params)
        payload = await _body(request)
        operation = tenant.replace_user if users else tenant.replace_group
        result = await run_in_threadpool(operation, item, payload, if_match(request))
        return _resource_response(result, Context.RESOURCE_REPLACEMENT_RESPONSE, parameters)

    @app.patch(f"/{{org}}/{endpoint}/{{item}}")
    async def patch(request: Request, scope: ScopeDep, org: str, item: str) -> Response:
        tenant = _tenant(request, scope, org)
        parameters = response_parameters(model, request.query_params)
        payload = await _body(request)
        operation = tenant.patch_user if users else tenant.patch_group
        result = await run_in_threadpool(operation, item, payload, if_match(request))
        return _resource_response(result, Context.RESOURCE_PATCH_RESPONSE, parameters)

    @app.delete(f"/{{org}}/{endpoint}/{{item}}")
    async def delete(request: Request, scope: ScopeDep, org: str, item: str) -> Response:
        tenant = _tenant(request, scope, org)
        await run_in_threadpool(tenant.delete_user if users else tenant.delete_group, item, if_match(request))
        return Response(status_code=204)


def _register_refusals(app: FastAPI, scope_dependency: ScopeDependency) -> None:
    """405 (for everybody) for the methods a path does not have; a SCIM 404 for every other path (once
    the caller is authenticated, so that an unknown path tells a stranger nothing)."""
    ScopeDep = Annotated[Scope, Depends(scope_dependency)]

    for path in PATHS:
        if not path.endswith(SEARCH):  # refused where they are registered: before the {item} paths
            _refuse_other_methods(app, path)

    async def unknown(request: Request, scope: ScopeDep) -> Response:
        raise NotFoundException(detail=f"no such SCIM endpoint: {request.url.path}")

    app.add_api_route("/{rest:path}", unknown, methods=list(METHODS), include_in_schema=False)


def _refuse_other_methods(app: FastAPI, path: str) -> None:
    allowed = PATHS[path]

    async def not_allowed(request: Request) -> Response:
        detail = f"method {request.method} is not allowed on {request.url.path} (allowed: {', '.join(allowed)})"
        return errors.error_response(errors.simple_error(405, detail), {"Allow": ", ".join(allowed)})

    app.add_api_route(path, not_allowed, methods=[m for m in METHODS if m not in allowed], include_in_schema=False)


async def _discovered(request: Request, scope: Scope, org: str, endpoint: str, items: Any) -> list[Any]:
    """Discovery documents of an organization the caller sees, each (a copy) with its meta (resourceType,
    location)."""
    tenant = _tenant(request, scope, org)
    await run_in_threadpool(tenant.require)
    kind = "ResourceType" if endpoint == "ResourceTypes" else "Schema"
    located = []
    for item in items:
        copy = item.model_copy()
        copy.meta = models.meta(kind, f"{tenant.place.base}/{endpoint}/{item.id}")
        located.append(copy)
    return located


def _by_id(items: list[Any], wanted: str, what: str) -> Any:
    found = next((i for i in items if i.id == wanted), None)
    if found is None:
        raise NotFoundException(detail=f"no {what} {wanted!r}")
    return found


__all__ = ["MAX_BODY_BYTES", "PATHS", "PREFIX", "build_scim_app"]
