"""The Tenancy HTTP API (SPEC §4): thin FastAPI routes over the service, errors as RFC 9457 problems.

Routes parse (path, query, headers, a size-limited JSON body), call `tenancy_backend.service` in a worker
thread, and map outcomes: documents with an `ETag`, `ServiceError`s to `application/problem+json`.
Request bodies are never logged.

Choices where SPEC §4 leaves room:
- `PUT` and `POST`: `metadata.name` / `metadata.organization` are filled from the path when absent and must
  match it when present (422 otherwise); read-only fields (uid, resourceVersion, timestamps, status) are ignored.
- `?limit=` outside 1..1000 is refused with 422; a malformed `cursor` or `labelSelector` with 400.
- `DELETE` answers 204, except for kinds whose deletion archives (CustomerSubscription): 200 and the document.
- `Idempotency-Key` on POST (resources, changesets, deposits) stores successful answers for 24 hours per token;
  a refused request is not stored (nothing happened, so a retry is safe).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenancy_kinds import KINDS, SLUG_PATTERN, Kind
from tenancy_backend import openapi as openapi_spec
from tenancy_backend.changes import Delta
from tenancy_backend.errors import (
    BadRequest,
    Invalid,
    RateLimited,
    ServiceError,
    TooLarge,
    Unauthorized,
    UnsupportedMediaType,
    status_title,
)
from tenancy_backend.methods import MethodSemantics, allowed_methods
from tenancy_backend.scim import PREFIX as SCIM_PREFIX
from tenancy_kinds import dotted, framing
from tenancy_kinds.defaults import DEFAULT_AUTH_FAILURE_LIMIT, DEFAULT_DATABASE_URL
from tenancy_kinds.messages import explain
from tenancy_backend.scim import scim_app
from tenancy_backend.scope import Scope
from tenancy_backend.selectors import CURSOR_PATTERN, SELECTOR_PATTERN
from tenancy_backend.reads import DEFAULT_LIMIT, MAX_LIMIT
from tenancy_backend.service import Service
from tenancy_backend.tokens import TOKEN_PATTERN

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
PROBLEM_JSON = "application/problem+json"
EXPORT_CHUNK = 200

_bearer = HTTPBearer(auto_error=False, description="an API token from `tenancy token create`")


# --- problems -------------------------------------------------------------------------------------


def problem_response(error: ServiceError) -> JSONResponse:
    return JSONResponse(error.problem(), status_code=error.status, headers=error.headers, media_type=PROBLEM_JSON)


def _problem(
    status: int, detail: str, errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": status_title(status),
        "status": status,
        "detail": detail,
        "errors": errors or [],
    }
    return JSONResponse(body, status_code=status, headers=headers or None, media_type=PROBLEM_JSON)


def _on_service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if exc.status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc.detail)
    return problem_response(exc)


def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    where = ("query", "header", "path", "body")
    raw = [{**e, "loc": tuple(part for part in e.get("loc", ()) if part not in where)} for e in exc.errors()]
    errors = [{"path": dotted(x.path), "message": x.text} for x in explain(None, None, raw)]  # the one translator
    detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:3]) or "invalid request"
    return _problem(422, f"invalid request: {detail}", errors)


def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() != "allow"}
    if exc.status_code == 404:
        detail = f"no such route: {request.method} {request.url.path}; see /openapi.json"
    elif exc.status_code == 405:
        # Starlette names only the methods of the first route that matched the path; RFC 9110 wants all.
        headers["Allow"] = ", ".join(allowed_methods(request.app.router.routes, request.scope))
        detail = f"method {request.method} is not allowed on {request.url.path} (allowed: {headers['Allow']})"
    else:
        detail = str(exc.detail)
    return _problem(exc.status_code, detail, headers=headers)


def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Never the body, never the headers (tokens): the route and the exception type and trace.
    log.exception("internal error on %s %s (%s)", request.method, request.url.path, type(exc).__name__)
    return _problem(500, "internal error; it was logged on the server")


# --- rate limiting --------------------------------------------------------------------------------


class RateLimiter:
    """A token bucket per principal: `rate` requests per second, bursts up to `rate` (at least 1)."""

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, principal: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(principal, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[principal] = (tokens, now)
                retry_after = max(1, math.ceil((1.0 - tokens) / self.rate))
                raise RateLimited(
                    f"rate limit of {self.rate:g} requests per second exceeded; retry after {retry_after} s",
                    retry_after,
                )
            self._buckets[principal] = (tokens - 1.0, now)


class AuthFailureLimiter:
    """Failed authentications per (client address, credential) pair over a sliding window; past `limit`, 429
    for that pair only, answered before the token is looked up.

    Why the pair and not the address: behind one NAT or proxy (a CI fleet, an office) many clients share an
    address, and one of them retrying with a revoked token must not lock the others out; a valid token is
    another pair, so it always keeps working. Guessing is no threat to the tokens' secrecy (256 random bits:
    a billion guesses a second for a century find one with probability below 2^-190), so the limit is about
    a stuck client's retry storm: it gets 429 with Retry-After, and its requests stop reaching the database.
    A request without a credential, or with one no token can look like, is never counted: it guesses nothing.

    Requests already past `check` when the limit is reached are still looked up: under concurrency a pair
    gets at most `limit` plus the requests it has in flight. Only a digest of the credential is kept. At most
    MAX_PAIRS pairs are tracked (the stalest are dropped: a spray of distinct guesses evicts only pairs that
    would have had one failure each).
    """

    MAX_PAIRS = 10_000

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = int(limit)
        self.window = float(window)
        self._clock = clock
        self._failures: dict[tuple[str, bytes], deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(address: str, credential: str) -> tuple[str, bytes]:
        return address, hashlib.sha256(credential.encode("utf-8", "surrogatepass")).digest()[:16]

    def _recent(self, key: tuple[str, bytes], now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def check(self, address: str, credential: str) -> None:
        """RateLimited when this credential failed `limit` times from this address within the window."""
        now = self._clock()
        with self._lock:
            failures = self._recent(self._key(address, credential), now)
            if len(failures) >= self.limit:
                retry_after = max(1, math.ceil(failures[0] + self.window - now))
                raise RateLimited(
                    f"this token failed to authenticate {len(failures)} times from {address} in the last "
                    f"{self.window:g} s; retry after {retry_after} s, or with a valid token now",
                    retry_after,
                )

    def failed(self, address: str, credential: str) -> None:
        now = self._clock()
        key = self._key(address, credential)
        with self._lock:
            failures = self._recent(key, now)
            failures.append(now)
            self._failures.pop(key, None)
            self._failures[key] = failures  # re-inserted: the dict stays ordered by last failure
            while len(self._failures) > self.MAX_PAIRS:
                del self._failures[next(iter(self._failures))]


# --- dependencies ---------------------------------------------------------------------------------


def _service(request: Request) -> Service:
    service: Service | None = request.app.state.service
    if service is None:
        raise ServiceError("this application was built for its OpenAPI document only")
    return service


_TOKEN = re.compile(TOKEN_PATTERN)
_MISSING = "missing bearer token: send `Authorization: Bearer <token>` (tenancy token create)"


def _credential(request: Request) -> str:
    """The bearer token of the request; Unauthorized, without any lookup, when there is none or when it
    cannot be a token (another scheme, or not the shape `tenancy token create` prints)."""
    header = request.headers.get("authorization")
    if header is None or not header.strip():
        raise Unauthorized(_MISSING)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("the Authorization header must be `Bearer <token>`")
    token = token.strip()
    if not token:
        raise Unauthorized(_MISSING)
    if not _TOKEN.match(token):
        raise Unauthorized(
            "malformed token: a token is `tnc_` and 43 more characters, as `tenancy token create` prints it",
            invalid_token=True,
        )
    return token


async def _scope(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Scope:
    # `credentials` documents the security scheme; the header is read by `_credential`.
    service = _service(request)
    token = _credential(request)
    guard: AuthFailureLimiter | None = request.app.state.auth_failures
    address = request.client.host if request.client else "unknown"
    if guard is not None:
        guard.check(address, token)
    try:
        scope = await run_in_threadpool(service.authenticate, token)
    except Unauthorized as e:
        if guard is not None:
            guard.failed(address, token)
        raise Unauthorized(e.detail, e.errors, invalid_token=True) from None
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
        limiter.take(scope.principal)
    return scope


ScopeDep = Annotated[Scope, Depends(_scope)]
OrgPath = Annotated[str, Path(description="the organization's name", pattern=SLUG_PATTERN, max_length=63)]
NamePath = Annotated[str, Path(description="the resource's name", pattern=SLUG_PATTERN, max_length=63)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, 1..{MAX_LIMIT}")]
# Cursors and selectors are checked by the service (400, naming the bad term); the document says which
# strings pass, with the patterns the service's own parsers are written against.
Cursor = Annotated[
    str | None,
    Query(description="the nextCursor of the previous page", json_schema_extra={"pattern": CURSOR_PATTERN}),
]
Selector = Annotated[
    str | None,
    Query(
        alias="labelSelector",
        max_length=2048,
        description="e.g. `team=sales,tier!=free,env,!legacy`",
        json_schema_extra={"pattern": SELECTOR_PATTERN},
    ),
]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", max_length=255, description="replays return the first answer")
]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=256, description="the ETag last read")]


_JSON_MEDIA_TYPE = re.compile(r"^application/([a-z0-9!#$&^_.-]+\+)?json$")  # application/json, application/*+json


def _require_json_media_type(request: Request) -> None:
    """415 for a body declared as anything but JSON. A body without Content-Type is read as JSON (RFC 9110
    §8.3 lets the recipient examine the data): the document says what it must be, and a parse error says so."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media_type = declared.split(";", 1)[0].strip().lower()
    if not _JSON_MEDIA_TYPE.match(media_type):
        raise UnsupportedMediaType(
            f"the body is declared as {media_type or 'nothing'!r}; send it as `Content-Type: application/json`",
            "application/json",
        )


async def read_json(request: Request) -> Any:
    """The JSON body, at most 1 MiB (by Content-Length and by what actually arrives), declared as JSON."""
    _require_json_media_type(request)
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadRequest("invalid Content-Length header")
        if int(declared) > MAX_BODY_BYTES:
            raise _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise BadRequest("the request body is empty; send a JSON document")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        message = (
            f"the body is not valid JSON: {e}" if isinstance(e, json.JSONDecodeError) else "the body is not valid JSON"
        )
        raise BadRequest(message, [{"path": "", "message": message}]) from None


def _too_large() -> TooLarge:
    return TooLarge(f"the request body exceeds {MAX_BODY_BYTES} bytes; split the changeset or the document")


def _document_response(document: dict[str, Any], status: int = 200, **headers: str) -> JSONResponse:
    etag = f'"{document["metadata"]["resourceVersion"]}"'
    return JSONResponse(document, status_code=status, headers={"ETag": etag, **headers})


# --- routes ---------------------------------------------------------------------------------------


def _register_kind(app: FastAPI, kind: Kind) -> None:
    """GET/POST on the collection and GET/PUT/DELETE on one resource of `kind`."""
    if kind.scoped:
        collection = f"/v1/organizations/{{org}}/{kind.plural}"
        _scoped_routes(app, kind, collection)
    else:
        _organization_routes(app, kind, "/v1/organizations")


def _docs(kind: Kind, summary: str, *, body: bool = False, ok: int = 200, model: str = "doc") -> dict[str, Any]:
    extra: dict[str, Any] = {"x-tenancy-kind": kind.name, "x-tenancy-response": model}
    if body:
        extra["x-tenancy-body"] = "doc"
    return {"summary": summary, "openapi_extra": extra, "status_code": ok, "tags": [kind.plural]}


def _organization_routes(app: FastAPI, kind: Kind, collection: str) -> None:
    item = collection + "/{name}"
    kind_name = kind.name

    @app.get(collection, operation_id=f"list{kind_name}s", **_docs(kind, f"List {kind_name}s", model="list"))
    async def list_(
        request: Request,
        scope: ScopeDep,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        selector: Selector = None,
    ) -> Response:
        page = await run_in_threadpool(_service(request).list, scope, kind_name, None, selector, limit, cursor)
        return JSONResponse({"items": page.items, "nextCursor": page.next_cursor})

    @app.post(collection, operation_id=f"create{kind_name}", **_docs(kind, f"Create a {kind_name}", body=True, ok=201))
    async def create(request: Request, scope: ScopeDep, idempotency_key: IdempotencyKey = None) -> Response:
        document = await read_json(request)
        doc = await run_in_threadpool(_service(request).create, scope, kind_name, None, document, idempotency_key)
        return _document_response(doc, 201, Location=f"{collection}/{doc['metadata']['name']}")

    @app.get(item, operation_id=f"get{kind_name}", **_docs(kind, f"Read a {kind_name}"))
    async def get(request: Request, scope: ScopeDep, name: NamePath) -> Response:
        return _document_response(await run_in_threadpool(_service(request).get, scope, kind_name, None, name))

    @app.put(item, operation_id=f"replace{kind_name}", **_docs(kind, f"Update a {kind_name}", body=True))
    async def put(request: Request, scope: ScopeDep, name: NamePath, if_match: IfMatch = None) -> Response:
        document = await read_json(request)
        doc = await run_in_threadpool(_service(request).update, scope, kind_name, None, name, document, if_match)
        return _document_response(doc)

    @app.delete(
        item, operation_id=f"delete{kind_name}", **_docs(kind, f"Delete a {kind_name}", ok=204, model="deleted")
    )
    async def delete(request: Request, scope: ScopeDep, name: NamePath, if_match: IfMatch = None) -> Response:
        doc = await run_in_threadpool(_service(request).delete, scope, kind_name, None, name, if_match)
        return _document_response(doc) if doc is not None else Response(status_code=204)


def _scoped_routes(app: FastAPI, kind: Kind, collection: str) -> None:
    item = collection + "/{name}"
    kind_name = kind.name
    archives = kind.delete_archives

    @app.get(collection, operation_id=f"list{kind_name}s", **_docs(kind, f"List {kind_name}s", model="list"))
    async def list_(
        request: Request,
        scope: ScopeDep,
        org: OrgPath,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        selector: Selector = None,
    ) -> Response:
        page = await run_in_threadpool(_service(request).list, scope, kind_name, org, selector, limit, cursor)
        return JSONResponse({"items": page.items, "nextCursor": page.next_cursor})

    @app.post(collection, operation_id=f"create{kind_name}", **_docs(kind, f"Create a {kind_name}", body=True, ok=201))
    async def create(
        request: Request, scope: ScopeDep, org: OrgPath, idempotency_key: IdempotencyKey = None
    ) -> Response:
        document = await read_json(request)
        doc = await run_in_threadpool(_service(request).create, scope, kind_name, org, document, idempotency_key)
        location = f"/v1/organizations/{org}/{kind.plural}/{doc['metadata']['name']}"
        return _document_response(doc, 201, Location=location)

    @app.get(item, operation_id=f"get{kind_name}", **_docs(kind, f"Read a {kind_name}"))
    async def get(request: Request, scope: ScopeDep, org: OrgPath, name: NamePath) -> Response:
        return _document_response(await run_in_threadpool(_service(request).get, scope, kind_name, org, name))

    @app.put(item, operation_id=f"replace{kind_name}", **_docs(kind, f"Update a {kind_name}", body=True))
    async def put(
        request: Request, scope: ScopeDep, org: OrgPath, name: NamePath, if_match: IfMatch = None
    ) -> Response:
        document = await read_json(request)
        doc = await run_in_threadpool(_service(request).update, scope, kind_name, org, name, document, if_match)
        return _document_response(doc)

    deleted = "archived" if archives else "deleted"
    summary = f"Archive a {kind_name} (it stays readable)" if archives else f"Delete a {kind_name}"

    @app.delete(
        item, operation_id=f"delete{kind_name}", **_docs(kind, summary, ok=200 if archives else 204, model=deleted)
    )
    async def delete(
        request: Request, scope: ScopeDep, org: OrgPath, name: NamePath, if_match: IfMatch = None
    ) -> Response:
        doc = await run_in_threadpool(_service(request).delete, scope, kind_name, org, name, if_match)
        return _document_response(doc) if doc is not None else Response(status_code=204)


def _register_extras(app: FastAPI) -> None:
    served: list[bytes] = []  # the rendered OpenAPI document, once

    @app.get("/healthz", operation_id="health", tags=["service"], openapi_extra={"x-tenancy-response": "health"})
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/v1/changesets",
        operation_id="applyChangeset",
        tags=["service"],
        summary="Apply operations in one transaction (all or nothing)",
        openapi_extra={"x-tenancy-body": "changeset", "x-tenancy-response": "changeset"},
    )
    async def changeset(request: Request, scope: ScopeDep, idempotency_key: IdempotencyKey = None) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or set(body) != {"operations"}:
            raise _invalid_body('the body must be {"operations": [...]}', "operations")
        results = await run_in_threadpool(_service(request).changeset, scope, body["operations"], idempotency_key)
        return _json_response({"results": results})

    @app.get(
        "/v1/export",
        operation_id="export",
        tags=["service"],
        summary="Every resource the token sees",
        openapi_extra={"x-tenancy-response": "export"},
    )
    async def export(
        request: Request,
        scope: ScopeDep,
        organization: Annotated[
            str | None, Query(pattern=SLUG_PATTERN, max_length=63, description="only this organization's subtree")
        ] = None,
        selector: Selector = None,
        since: Annotated[
            int | None,
            Query(
                ge=0,
                le=2**63 - 1,
                description="only what changed since this revision (the X-Tenancy-Revision of an earlier export): "
                "the changed documents and the keys no longer there; 410 when the change log no longer reaches it",
            ),
        ] = None,
    ) -> Response:
        service = _service(request)
        if since is not None:
            delta = await run_in_threadpool(service.changes, scope, since, organization, selector)
            headers = _revision_headers(delta.revision, delta.database)
            return _framed_response(_json_items(delta.items, _delta_head(delta)), headers)
        snapshot = await run_in_threadpool(service.snapshot, scope, organization, selector)
        headers = _revision_headers(snapshot.revision, snapshot.database)
        return _framed_response(_json_items(snapshot.documents), headers)

    @app.get("/v1/prices", operation_id="prices", tags=["service"], openapi_extra={"x-tenancy-response": "prices"})
    async def prices(request: Request, scope: ScopeDep) -> Response:
        return JSONResponse(_service(request).prices())

    @app.post(
        "/v1/organizations/{org}/deposits",
        operation_id="deposit",
        tags=["organizations"],
        summary="Add a prepaid deposit to an organization's balance",
        openapi_extra={"x-tenancy-body": "deposit", "x-tenancy-response": "doc", "x-tenancy-kind": "Organization"},
    )
    async def deposit(
        request: Request, scope: ScopeDep, org: OrgPath, idempotency_key: IdempotencyKey = None
    ) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or set(body) != {"amount"}:
            raise _invalid_body('the body must be {"amount": "50.00"}', "amount")
        doc = await run_in_threadpool(_service(request).deposit, scope, org, body["amount"], idempotency_key)
        return _document_response(doc)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json() -> Response:
        # Byte for byte the checked-in schemas/openapi.json, not merely the same JSON.
        if not served:
            served.append(openapi_spec.render_openapi(app.openapi()).encode())
        return Response(served[0], media_type="application/json")


def _invalid_body(message: str, path: str) -> ServiceError:
    return Invalid(message, [{"path": path, "message": message}])


def _json_response(content: Any) -> Response:
    """The JSONResponse of `content`, byte for byte, encoded by orjson (a changeset's results are tens of
    kilobytes: ten times faster); JSONResponse itself for what orjson refuses (integers beyond 64 bits)."""
    try:
        body = orjson.dumps(content)
    except orjson.JSONEncodeError:
        return JSONResponse(content)
    return Response(body, media_type="application/json")


def _dumps(doc: dict[str, Any]) -> str:
    """Compact JSON: orjson (an export of 100,000 documents spends most of its time here), or the standard
    library for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(doc).decode()
    except orjson.JSONEncodeError:
        return json.dumps(doc, separators=(",", ":"))


def _dumps_many(docs: list[dict[str, Any]]) -> bytes:
    """The documents as comma-separated compact JSON: one orjson call for the whole chunk (what `_dumps`
    gives document by document, minus a call and a decode/encode per document), `_dumps` each when
    orjson refuses one of them."""
    try:
        return orjson.dumps(docs)[1:-1]
    except orjson.JSONEncodeError:
        return ",".join(_dumps(doc) for doc in docs).encode()


REVISION_HEADER = "X-Tenancy-Revision"
DATABASE_HEADER = "X-Tenancy-Database"


def _revision_headers(revision: int, database: int) -> dict[str, str]:
    return {REVISION_HEADER: str(revision), DATABASE_HEADER: str(database)}


def _delta_head(delta: Delta) -> dict[str, Any]:
    """The since-form of an export but its items (they follow, a chunk per line: see `_json_items`)."""
    deleted = [{"kind": k.kind, "organization": k.organization or None, "name": k.name} for k in delta.deleted]
    return {"revision": delta.revision, "since": delta.since, "database": str(delta.database), "deleted": deleted}


def _framed_response(parts: Iterator[bytes], headers: dict[str, str]) -> Response:
    return StreamingResponse(parts, media_type="application/json", headers=headers)


def _json_items(documents: Iterable[dict[str, Any]], head: Mapping[str, Any] | None = None) -> Iterator[bytes]:
    """`{**head, "items": [...documents]}`, EXPORT_CHUNK documents a line (tenancy_kinds.framing)."""
    return framing.frame(head or {}, framing.chunks_of(documents, EXPORT_CHUNK, _dumps_many))


# --- the application ------------------------------------------------------------------------------


def build_app(
    service: Service | None, rate_limit: float | None = None, auth_failure_limit: int = DEFAULT_AUTH_FAILURE_LIMIT
) -> FastAPI:
    """The application around a service (None: an app that only describes itself, for the OpenAPI document).

    `auth_failure_limit`: failed authentications per client address and credential per minute before 429
    (0: no limit; see `AuthFailureLimiter`).
    """
    app = FastAPI(
        title="Tenancy API",
        version="1.0.0",
        description=openapi_spec.DESCRIPTION,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        separate_input_output_schemas=False,
        redirect_slashes=False,  # `/users/` is not a route (404), not a 307 to wherever the slash-less path leads
    )
    app.state.service = service
    app.state.rate_limiter = RateLimiter(rate_limit) if rate_limit else None
    app.state.auth_failures = AuthFailureLimiter(auth_failure_limit) if auth_failure_limit > 0 else None
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
    app.add_middleware(MethodSemantics, routes=app.router.routes)
    _register_extras(app)
    for kind in KINDS.values():
        _register_kind(app, kind)
    app.mount(SCIM_PREFIX, scim_app(app.state, _scope))  # SPEC §8: same tokens, scopes and limits
    app.openapi = lambda: openapi_spec.customise(app)  # type: ignore[method-assign]
    return app


def create_app(
    db_url: str,
    rate_limit: float | None = None,
    prices: dict[str, Any] | None = None,
    auth_failure_limit: int = DEFAULT_AUTH_FAILURE_LIMIT,
) -> FastAPI:
    """The Tenancy API on a database (created and migrated now)."""
    return build_app(Service(db_url, prices=prices), rate_limit, auth_failure_limit)


def app_from_env() -> FastAPI:
    """The app configured by TENANCY_DB, TENANCY_RATE_LIMIT, TENANCY_AUTH_FAILURE_LIMIT and TENANCY_PRICES
    (for `uvicorn --factory`)."""
    from tenancy_kinds.billing import parse_price_options

    rate = os.environ.get("TENANCY_RATE_LIMIT")
    failures = os.environ.get("TENANCY_AUTH_FAILURE_LIMIT", "").strip()
    prices_env = os.environ.get("TENANCY_PRICES", "")
    prices = parse_price_options([p for p in prices_env.split(",") if p.strip()]) or None
    return create_app(
        os.environ.get("TENANCY_DB", DEFAULT_DATABASE_URL),
        float(rate) if rate else None,
        prices,
        int(failures) if failures else DEFAULT_AUTH_FAILURE_LIMIT,
    )


__all__ = [
    "DEFAULT_AUTH_FAILURE_LIMIT",
    "MAX_BODY_BYTES",
    "AuthFailureLimiter",
    "RateLimiter",
    "app_from_env",
    "build_app",
    "create_app",
    "read_json",
]
