"""The backend's exception tree: every refusal is a `ServiceError` carrying an HTTP status and details.

The service raises these; the HTTP API renders them as RFC 9457 problem documents and `provider.embedded`
converts them into the provider's own tree. Messages are written for the person who has to act on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ServiceError(Exception):
    """A request the backend refuses (or cannot serve); `errors` locates each problem by document path."""

    status: int = 500
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors: list[dict[str, str]] = list(errors or [])
        self.headers: dict[str, str] = dict(headers or {})

    def __str__(self) -> str:
        return self.detail

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem document for this error."""
        return {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "errors": self.errors,
        }


class BadRequest(ServiceError):
    status = 400
    title = "Bad Request"


class Unauthorized(ServiceError):
    """No usable credential. `invalid_token`: one was sent but is unknown, revoked, expired or malformed
    (RFC 6750 §3.1: the challenge names the error only when a credential was sent)."""

    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None, *, invalid_token: bool = False) -> None:
        challenge = 'Bearer realm="tenancy"' + (', error="invalid_token"' if invalid_token else "")
        super().__init__(detail, errors, headers={"WWW-Authenticate": challenge})


class Forbidden(ServiceError):
    """The token is valid and the resource in scope, but the token lacks a right (legal representative)."""

    status = 403
    title = "Forbidden"


class NotFound(ServiceError):
    status = 404
    title = "Not Found"


class Conflict(ServiceError):
    status = 409
    title = "Conflict"


class Taken(Conflict):
    """A name or a unique value (domain, address, username, ...) is already held by another resource."""


class Gone(ServiceError):
    """An incremental export from a revision the change log no longer holds (or never held): read it all."""

    status = 410
    title = "Gone"


class PreconditionFailed(ServiceError):
    status = 412
    title = "Precondition Failed"


class TooLarge(ServiceError):
    status = 413
    title = "Content Too Large"


class UnsupportedMediaType(ServiceError):
    """A request body in a media type other than JSON; `Accept` names what would have been read (RFC 9110 §15.5.16)."""

    status = 415
    title = "Unsupported Media Type"

    def __init__(self, detail: str, accept: str) -> None:
        super().__init__(detail, [{"path": "", "message": detail}], headers={"Accept": accept})


class Invalid(ServiceError):
    status = 422
    title = "Unprocessable Content"


class RateLimited(ServiceError):
    status = 429
    title = "Too Many Requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class Unavailable(ServiceError):
    """The database cannot be reached or stayed locked; a retry may succeed."""

    status = 503
    title = "Service Unavailable"


# RFC 9110's names where Python's HTTPStatus keeps older ones (422 was "Unprocessable Entity").
_RFC_9110_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


def status_title(status: int) -> str:
    """The problem title of an HTTP status: one name per status, whoever refuses."""
    from http import HTTPStatus

    return _RFC_9110_TITLES.get(status) or HTTPStatus(status).phrase


def error_for_status(status: int) -> type[ServiceError]:
    """The ServiceError subclass for an HTTP status."""
    for cls in (BadRequest, Forbidden, NotFound, Conflict, PreconditionFailed, TooLarge, Invalid, Unavailable):
        if cls.status == status:
            return cls
    return Invalid


@dataclass(frozen=True)
class Violation:
    """One broken rule, located by document path; `resource` names the resource it is about, if any."""

    status: int
    path: str
    message: str
    resource: tuple[str, str, str] | None = field(default=None, compare=False)


def refuse(violations: list[Violation], prefix: Mapping[Any, str] | None = None) -> ServiceError:
    """One error for all violations, with the status of the first; paths optionally prefixed per resource."""
    prefix = prefix or {}
    errors = []
    for v in violations:
        head = prefix.get(v.resource, "") if v.resource else ""
        errors.append({"path": ".".join(p for p in (head, v.path) if p), "message": v.message})
    first = violations[0]
    detail = first.message if len(violations) == 1 else f"{len(violations)} problems: " + "; ".join(
        v.message for v in violations[:5]
    ) + ("; ..." if len(violations) > 5 else "")
    return error_for_status(first.status)(detail, errors)


__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "PreconditionFailed",
    "RateLimited",
    "ServiceError",
    "Taken",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "Violation",
    "error_for_status",
    "refuse",
    "status_title",
]
