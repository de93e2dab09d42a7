"""The Tenancy API client: one interface (`Client`), spoken over HTTP here and in-process in `embedded.py`.

The HTTP client keeps one pooled keep-alive session, sends the bearer token, pages through lists, sends
`If-Match` on every PUT and DELETE and an `Idempotency-Key` on every POST, and retries 429/502/503/504 and
connection failures with backoff (honouring `Retry-After`) only where repeating the request is safe.
`requests` exceptions never leave this module: they become `provider.errors` types, chained.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol
from urllib.parse import quote

import orjson
import requests
from requests.adapters import HTTPAdapter

from provider.documents import Documents
from provider.errors import BackendError, NotFound, TransportError, backend_error_for
from provider.live import LiveDelta, LiveState, delta_of, token_scope
from tenancy_kinds import KINDS, ResourceKey, framing
from tenancy_kinds.defaults import redact_url

RETRY_STATUSES = frozenset({429, 502, 503, 504})
REVISION_HEADER = "X-Tenancy-Revision"
DATABASE_HEADER = "X-Tenancy-Database"


class Client(Protocol):
    """What the engine needs from a tenancy backend."""

    description: str

    def export(self, organization: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]: ...

    def items(
        self, kind: str, organization: str | None = None, label_selector: str | None = None
    ) -> Iterator[dict[str, Any]]: ...

    def get(self, key: ResourceKey) -> dict[str, Any] | None: ...

    def create(self, document: dict[str, Any]) -> dict[str, Any]: ...

    def update(self, document: dict[str, Any], if_match: str | None) -> dict[str, Any]: ...

    def delete(self, key: ResourceKey, if_match: str | None) -> dict[str, Any] | None: ...

    def changeset(self, operations: list[dict[str, Any]]) -> list[dict[str, Any] | None]: ...

    def prices(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


_STREAM_BLOCK = 1024 * 1024  # bytes read at a time from a streamed export


def _body(response: requests.Response, items: Callable[[], Any] = list) -> Any:
    """The decoded JSON body, or None when empty: orjson first (a 100,000-resource export decodes several
    times faster), a line at a time where the backend laid it out so (tenancy_kinds.framing: an export's
    parse tree never whole; its items gathered in what `items` makes), requests' own decoder for what
    orjson refuses (integers beyond 64 bits, or the error)."""
    if not response.content:
        return None
    try:
        return framing.loads(response.content, items=items)
    except orjson.JSONDecodeError:
        pass
    try:
        return response.json()
    except (ValueError, RecursionError):
        raise _unlike_a_backend(response, "not JSON") from None


def _answered_at(response: requests.Response) -> str:
    """Where an answer came from, as messages name it: no password, no query."""
    return redact_url(str(response.url or "")).split("?", 1)[0]


def _unlike_a_backend(response: requests.Response, what: str) -> BackendError:
    """A server that answers as no tenancy backend does (another service at that address, a proxy's page)."""
    request = response.request
    return BackendError(
        f"{_answered_at(response)} did not answer {request.method if request else 'the request'} "
        "as a tenancy backend does "
        f"(HTTP {response.status_code}, {what}): check --backend or TENANCY_BACKEND"
    )


def _shaped(response: requests.Response, body: Any, *fields: str) -> Any:
    """The body when it is a JSON object holding `fields` (lists each), else a BackendError."""
    if not isinstance(body, dict) or any(not isinstance(body.get(f), list | Documents) for f in fields):
        wanted = f"an object with {', '.join(fields)}" if fields else "an object"
        raise _unlike_a_backend(response, f"not {wanted}")
    return body


def _encode(value: Any) -> bytes:
    """A request body: orjson (a changeset of 50 documents encodes ~10x faster), the standard library for what
    orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def collection_path(kind: str, organization: str | None) -> str:
    plural = KINDS[kind].plural
    if not KINDS[kind].scoped:
        return f"/v1/{plural}"
    return f"/v1/organizations/{quote(organization or '', safe='')}/{plural}"


def item_path(key: ResourceKey) -> str:
    return f"{collection_path(key.kind, key.organization or None)}/{quote(key.name, safe='')}"


def changeset_operation(
    op: str, key: ResourceKey, document: dict[str, Any] | None = None, if_match: str | None = None
) -> dict[str, Any]:
    """One operation of a `POST /v1/changesets` body."""
    out: dict[str, Any] = {"op": op, "kind": key.kind, "organization": key.organization or None, "name": key.name}
    if document is not None:
        out["document"] = document
    if if_match is not None:
        out["ifMatch"] = if_match
    return out


def _problem(response: requests.Response) -> BackendError:
    """An error answer (RFC 9457 problem+json, or anything else) as a BackendError."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("detail") or body.get("title") or "")
    if not message:  # no problem document: say who answered, which may not be a tenancy backend at all
        message = (
            f"{response.reason or 'HTTP ' + str(response.status_code)} (HTTP {response.status_code} "
            f"from {_answered_at(response)}, "
            "without a problem document: is it a tenancy backend? check --backend or TENANCY_BACKEND)"
        )
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    retry_after = _retry_after(response)
    return backend_error_for(response.status_code, message, errors=errors, retry_after=retry_after)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class HttpClient:
    """The Tenancy HTTP API over one pooled `requests.Session`."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 60.0,
        retries: int = 6,
        backoff: float = 0.2,
        pool_size: int = 32,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.description = redact_url(self.base_url)  # what messages name: never a password in the URL
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "tenancy-provider"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.cache_identity = f"{self.description} {token_scope(token)}"  # what the export cache is keyed by

    # --- transport --------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
    ) -> tuple[requests.Response, bool]:
        """Send with retries; answers (response, whether an earlier attempt may have been processed). With
        `stream`, the body is left to read (`_export_body`)."""
        url = self.base_url + path
        body = None if json is None else _encode(json)
        if body is not None:
            headers = {**(headers or {}), "Content-Type": "application/json"}
        maybe_done = False
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.session.request(
                    method, url, data=body, params=params, headers=headers, timeout=(5.0, timeout or self.timeout),
                    stream=stream,
                )
            except requests.RequestException as e:
                # The request may have reached the server: repeating it is safe because every mutating
                # request carries an Idempotency-Key or an If-Match, which the caller accounts for.
                maybe_done = maybe_done or not isinstance(e, requests.ConnectTimeout)
                if last:
                    raise TransportError(f"cannot reach the tenancy backend at {self.description}: {_reason(e)}") from e
                self._sleep(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                maybe_done = maybe_done or response.status_code in (502, 504)
                response.close()
                self._sleep(attempt, _retry_after(response))
                continue
            return response, maybe_done
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, retry_after: float | None) -> None:
        delay = retry_after if retry_after is not None else self.backoff * (2**attempt)
        time.sleep(min(delay, 30.0) * (1 + random.random() * 0.1))

    def _json(self, method: str, path: str, *fields: str, **kwargs: Any) -> Any:
        """The JSON object answered (holding the lists `fields`); a BackendError for an error answer or
        for one no tenancy backend gives."""
        response, _ = self._request(method, path, **kwargs)
        if response.status_code >= 400:
            raise _problem(response)
        return _shaped(response, _body(response), *fields)

    # --- the interface ----------------------------------------------------------------------------

    def export(self, organization: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]:
        return list(self.snapshot(organization, label_selector).documents)

    def snapshot(self, organization: str | None = None, label_selector: str | None = None) -> LiveState:
        """The whole export and the revision it is the state of (None from a backend that does not say)."""
        params = {k: v for k, v in {"organization": organization, "labelSelector": label_selector}.items() if v}
        response, body = self._export_body(params)
        documents = Documents.of(_shaped(response, body, "items")["items"])
        revision = response.headers.get(REVISION_HEADER, "")
        database = response.headers.get(DATABASE_HEADER)
        if not revision.isdigit() or database is None:
            return LiveState(documents)
        return LiveState(documents, int(revision), database)

    def changes(
        self, since: int, organization: str | None = None, label_selector: str | None = None
    ) -> LiveDelta | None:
        """What changed since revision `since` (BackendError 410 when the backend cannot tell); None when
        the backend answered something else than the changes (an older backend: read it whole)."""
        params: dict[str, Any] = {"since": since}
        params.update({k: v for k, v in {"organization": organization, "labelSelector": label_selector}.items() if v})
        response, body = self._export_body(params)
        return delta_of(_shaped(response, body))

    def _export_body(self, params: dict[str, Any]) -> tuple[requests.Response, Any]:
        """`GET /v1/export`: the response and its body, the documents kept compact as they are read. The
        body is streamed and decoded a line at a time (tenancy_kinds.framing), so that the bytes of an
        export of 1,000,000 resources (600 MB) are never held beside its documents; a body laid out
        otherwise (another backend) is read again, whole."""
        response, _ = self._request("GET", "/v1/export", params=params, timeout=600.0, stream=True)
        try:
            if response.status_code >= 400:
                raise _problem(response)
            try:
                lines = framing.lines_of(response.iter_content(_STREAM_BLOCK))
                return response, framing.loads_lines(lines, Documents)
            except framing.NotFramed:
                pass
            except requests.RequestException as e:
                broke = f"the tenancy backend at {self.description} broke off an export: {_reason(e)}"
                raise TransportError(broke) from e
        finally:
            response.close()
        response, _ = self._request("GET", "/v1/export", params=params, timeout=600.0)
        if response.status_code >= 400:
            raise _problem(response)
        return response, _body(response, Documents)

    def items(
        self, kind: str, organization: str | None = None, label_selector: str | None = None
    ) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            if label_selector:
                params["labelSelector"] = label_selector
            body = self._json("GET", collection_path(kind, organization), "items", params=params)
            yield from body["items"]
            cursor = body.get("nextCursor")
            if not cursor:
                return

    def get(self, key: ResourceKey) -> dict[str, Any] | None:
        try:
            return self._json("GET", item_path(key))  # type: ignore[no-any-return]
        except NotFound:
            return None

    def create(self, document: dict[str, Any]) -> dict[str, Any]:
        key = ResourceKey.of(document)
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        return self._json("POST", collection_path(key.kind, key.organization or None), json=document, headers=headers)  # type: ignore[no-any-return]

    def update(self, document: dict[str, Any], if_match: str | None) -> dict[str, Any]:
        key = ResourceKey.of(document)
        headers = {"If-Match": f'"{if_match}"'} if if_match else {}
        response, maybe_done = self._request("PUT", item_path(key), json=document, headers=headers)
        if response.status_code == 412 and maybe_done:
            # An earlier attempt may have landed and moved the version: if the backend already holds
            # what we sent, the update is done; otherwise someone else changed it.
            current = self.get(key)
            if current is not None and _same_content(current, document):
                return current
        if response.status_code >= 400:
            raise _problem(response)
        return _shaped(response, _body(response))  # type: ignore[no-any-return]

    def delete(self, key: ResourceKey, if_match: str | None) -> dict[str, Any] | None:
        headers = {"If-Match": f'"{if_match}"'} if if_match else {}
        response, maybe_done = self._request("DELETE", item_path(key), headers=headers)
        if response.status_code == 404 and maybe_done:
            return None  # an earlier attempt deleted it
        if response.status_code >= 400:
            raise _problem(response)
        return _body(response)  # type: ignore[no-any-return]  # a document, or None for an empty body

    def changeset(self, operations: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        body = self._json(
            "POST", "/v1/changesets", "results", json={"operations": operations}, headers=headers, timeout=600.0
        )
        return list(body["results"])

    def prices(self) -> dict[str, Any]:
        return self._json("GET", "/v1/prices")  # type: ignore[no-any-return]

    def close(self) -> None:
        self.session.close()


def _same_content(live: dict[str, Any], sent: dict[str, Any]) -> bool:
    kind = KINDS[live["kind"]]
    live_meta, sent_meta = live.get("metadata") or {}, sent.get("metadata") or {}
    return (
        kind.essence(live.get("spec") or {}) == kind.essence(sent.get("spec") or {})
        and (live_meta.get("labels") or {}) == (sent_meta.get("labels") or {})
        and bool(live_meta.get("protected")) == bool(sent_meta.get("protected"))
    )


def _reason(e: Exception) -> str:
    text = str(e)
    for marker in ("Connection refused", "timed out", "Name or service not known", "reset by peer"):
        if marker in text:
            return marker.lower()
    return type(e).__name__


__all__ = ["Client", "HttpClient", "changeset_operation", "collection_path", "item_path"]
