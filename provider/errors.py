"""The provider's exception tree: one root, errors that carry data, and whether a retry can help.

Every failure a user can meet is a `TenancyError`; the CLI prints its message (never a traceback) and
exits 1. Transport and database exceptions are converted into this tree at the edge where they occur
(`client.py`, `embedded.py`) and chained with ``from e``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Finding:
    """One validation finding, located as precisely as the YAML marks allow."""

    file: str
    line: int
    col: int
    severity: Severity
    message: str
    field: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.severity.value}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": self.severity.value,
            "field": self.field,
            "message": self.message,
        }


class TenancyError(Exception):
    """Root of every error the provider raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(TenancyError):
    """Bad command-line options, environment or configuration."""


class ManifestError(TenancyError):
    """The manifests are invalid; `findings` lists every error and warning found."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = sorted(findings)
        errors = [f for f in self.findings if f.severity is Severity.ERROR]
        super().__init__("\n".join(str(f) for f in errors) or "invalid manifests")


class SecretError(TenancyError):
    """A password source cannot be resolved (unset variable, missing file, a path leaving the manifest root).

    The message names the manifest position and the source (variable or path), never the secret.
    """

    def __init__(self, reason: str, *, file: str = "", line: int = 0, col: int = 0, field: str = "") -> None:
        super().__init__(f"{file}:{line}:{col}: {reason}" if file else reason)
        self.reason = reason
        self.file = file
        self.line = line
        self.col = col
        self.field = field

    def as_finding(self) -> Finding:
        return Finding(self.file, self.line, self.col, Severity.ERROR, self.reason, self.field)


class PlanError(TenancyError):
    """The desired state cannot be planned (protected resource, foreign stack, dependency cycle)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class StalePlanError(TenancyError):
    """A saved plan no longer matches the backend: something moved since it was made."""

    def __init__(self, moved: list[str]) -> None:
        self.moved = list(moved)
        lines = "\n".join(f"  {m}" for m in self.moved)
        super().__init__(
            f"the saved plan is stale; nothing was changed. These resources moved since it was made:\n{lines}\n"
            "Run `tenancy plan` again."
        )


class ApplyRefused(TenancyError):
    """Apply refused to start (deletion guard, no confirmation); nothing was changed."""


class ApplyInterrupted(TenancyError):
    """Apply was interrupted (Ctrl-C) after it began: says how far it got, and how to finish."""


class PolicyError(TenancyError):
    """A policy cannot be read or run: a Rego syntax error, a rule of the wrong shape, a failing built-in.

    Names the policy file and, when the Rego engine says where, the line and column.
    """

    def __init__(self, reason: str, *, file: str = "", line: int = 0, col: int = 0) -> None:
        where = f"{file}:{line}:{col}" if file and line else file
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason = reason
        self.file = file
        self.line = line
        self.col = col


class PolicyFailed(TenancyError):
    """The plan fails its policies (`deny` / `violation` messages): plan exits 1, apply changes nothing."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = list(failures)
        count = len(self.failures)
        super().__init__(
            f"the plan fails its policies ({count} failure{'' if count == 1 else 's'}, FAIL above): nothing was "
            "changed. Change the manifests, or the policy if it is wrong."
        )


class BackendError(TenancyError):
    """The tenancy backend answered with an error (RFC 9457 problem details)."""

    status: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: list[dict[str, str]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.errors: list[dict[str, str]] = list(errors or [])
        self.retry_after = retry_after

    def __str__(self) -> str:
        details = [e.get("message", "") for e in self.errors if e.get("message") and e.get("message") != self.message]
        if not details:
            return self.message
        return self.message + "".join(f"\n  - {d}" for d in details)


class BadRequest(BackendError):
    status = 400


class Unauthorized(BackendError):
    status = 401


class NotFound(BackendError):
    status = 404


class Conflict(BackendError):
    status = 409


class PreconditionFailed(BackendError):
    """The resource changed since it was read (ETag mismatch)."""

    status = 412


class Unprocessable(BackendError):
    status = 422


class RateLimited(BackendError):
    status = 429
    retryable = True


class Unavailable(BackendError):
    """5xx answers and transport failures: the request may succeed later."""

    status = 503
    retryable = True


class TransportError(Unavailable):
    """The backend could not be reached (connection refused, reset, timed out)."""

    status = 0


_BY_STATUS: dict[int, type[BackendError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    413: BadRequest,
    422: Unprocessable,
    429: RateLimited,
}


def backend_error_for(status: int, message: str, **kwargs: Any) -> BackendError:
    """The BackendError subclass for an HTTP status (5xx → Unavailable)."""
    cls = _BY_STATUS.get(status) or (Unavailable if status >= 500 else BackendError)
    return cls(message, status=status, **kwargs)


__all__ = [
    "ApplyRefused",
    "BackendError",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "Finding",
    "ManifestError",
    "NotFound",
    "PlanError",
    "PolicyError",
    "PolicyFailed",
    "PreconditionFailed",
    "RateLimited",
    "SecretError",
    "Severity",
    "StalePlanError",
    "TenancyError",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "backend_error_for",
]
