"""SCIM Error documents (RFC 7644 §3.12): every refusal as `application/scim+json`, with its scimType.

The service's refusals keep their meaning: a name or unique value already held (`Taken`) is 409
`uniqueness`; a document the service finds invalid (422) is 400 `invalidValue`, since SCIM has no 422;
every other status passes through. scim2-models' own exceptions carry their scimType already, and a
payload that does not fit the models is 400 `invalidSyntax` or `invalidValue` as scim2-models reads it.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse
from pydantic import ValidationError
from scim2_models import Context, Error, SCIMException

from tenancy_backend.errors import ServiceError, Taken

SCIM_JSON = "application/scim+json"
_SCIM_STATUS = {422: 400}  # SCIM knows no 422: an invalid value is a 400
_SCIM_TYPE = {400: "invalidValue", 422: "invalidValue"}


def error_response(error: Error, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = error.model_dump(scim_ctx=Context.DEFAULT)
    return JSONResponse(body, status_code=error.status or 500, headers=dict(headers or {}), media_type=SCIM_JSON)


def service_error(error: ServiceError) -> Error:
    """The SCIM Error for a refusal of the service (its message kept, never a stack trace)."""
    scim_type = "uniqueness" if isinstance(error, Taken) else _SCIM_TYPE.get(error.status)
    return Error(status=_SCIM_STATUS.get(error.status, error.status), scim_type=scim_type, detail=error.detail)


def validation_error(error: ValidationError) -> Error:
    """The SCIM Error for a payload scim2-models refused: the first problem's keyword, every problem said."""
    errors = Error.from_validation_errors(error)
    detail = "; ".join(e.detail or "" for e in errors[:5]) + ("; ..." if len(errors) > 5 else "")
    return Error(status=errors[0].status or 400, scim_type=errors[0].scim_type, detail=detail)


def scim_error(error: SCIMException) -> Error:
    return error.to_error()


def simple_error(status: int, detail: str, scim_type: str | None = None) -> Error:
    return Error(status=status, scim_type=scim_type, detail=detail)


__all__ = ["SCIM_JSON", "error_response", "scim_error", "service_error", "simple_error", "validation_error"]
