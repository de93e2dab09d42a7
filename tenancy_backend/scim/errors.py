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
from pydantic.alias_generators import to_camel
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
    """The SCIM Error for a payload scim2-models refused: the first problem's keyword, every problem said,
    each at its attribute's SCIM name (a value patched in is checked under the model's own: display_name)."""
    problems = [{**e, "loc": tuple(_scim_name(p) for p in e["loc"])} for e in error.errors()]
    errors = Error.from_validation_errors(problems)
    detail = "; ".join(e.detail or "" for e in errors[:5]) + ("; ..." if len(errors) > 5 else "")
    return Error(status=errors[0].status or 400, scim_type=errors[0].scim_type, detail=detail)


def _scim_name(part: str | int) -> str | int:
    """A model's field name as SCIM spells it (display_name → displayName); anything else as it is."""
    return to_camel(part) if isinstance(part, str) and "_" in part and part.replace("_", "").isalnum() else part


def scim_error(error: SCIMException) -> Error:
    """scim2-models' refusal; one made of pydantic's error (a PATCH value of the wrong type) is worded as a
    payload's is (`validation_error`), keeping its status and scimType."""
    found = error.to_error()
    if isinstance(error.__cause__, ValidationError):
        return Error(status=found.status, scim_type=found.scim_type, detail=validation_error(error.__cause__).detail)
    return found


def simple_error(status: int, detail: str, scim_type: str | None = None) -> Error:
    return Error(status=status, scim_type=scim_type, detail=detail)


__all__ = ["SCIM_JSON", "error_response", "scim_error", "service_error", "simple_error", "validation_error"]
