"""The `Client` interface straight onto the backend's service layer, in-process (`sqlite:///`, `postgresql://`).

The same rules and the same errors as over HTTP: the service raises `tenancy_backend.errors.ServiceError`,
which is converted here, in one place, into the provider's own `BackendError` types.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from provider.errors import NotFound, TenancyError, backend_error_for
from provider.documents import Documents
from provider.live import LiveDelta, LiveState
from tenancy_kinds import ResourceKey
from tenancy_kinds.defaults import redact_url

T = TypeVar("T")


class EmbeddedClient:
    """The tenancy service in this process, acting with a root scope (the database's owner)."""

    def __init__(self, db_url: str) -> None:
        from tenancy_backend.service import Scope, Service

        self.description = redact_url(db_url)
        self.cache_identity = f"{redact_url(_absolute(db_url))} root"  # what the export cache is keyed by
        self._service = _call(lambda: Service(db_url))
        self._scope = Scope.root(legal_representative=True)

    @property
    def service(self) -> Any:
        return self._service

    def export(self, organization: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]:
        return _call(
            lambda: list(self._service.export(self._scope, organization=organization, label_selector=label_selector))
        )

    def snapshot(self, organization: str | None = None, label_selector: str | None = None) -> LiveState:
        def read() -> LiveState:
            found = self._service.snapshot(self._scope, organization, label_selector)
            return LiveState(Documents.of(found.documents), found.revision, str(found.database))

        return _call(read)

    def changes(
        self, since: int, organization: str | None = None, label_selector: str | None = None
    ) -> LiveDelta | None:
        delta = _call(lambda: self._service.changes(self._scope, since, organization, label_selector))
        return LiveDelta(
            delta.revision, delta.since, str(delta.database), Documents.of(delta.items), list(delta.deleted)
        )

    def items(
        self, kind: str, organization: str | None = None, label_selector: str | None = None
    ) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = _call(
                functools.partial(
                    self._service.list,
                    self._scope, kind, organization, label_selector=label_selector, limit=1000, cursor=cursor,
                )
            )
            yield from page.items
            cursor = page.next_cursor
            if not cursor:
                return

    def get(self, key: ResourceKey) -> dict[str, Any] | None:
        try:
            return _call(lambda: self._service.get(self._scope, key.kind, key.organization or None, key.name))
        except NotFound:
            return None

    def create(self, document: dict[str, Any]) -> dict[str, Any]:
        key = ResourceKey.of(document)
        return _call(lambda: self._service.create(self._scope, key.kind, key.organization or None, document))

    def update(self, document: dict[str, Any], if_match: str | None) -> dict[str, Any]:
        key = ResourceKey.of(document)
        return _call(
            lambda: self._service.update(
                self._scope, key.kind, key.organization or None, key.name, document, if_match=if_match
            )
        )

    def delete(self, key: ResourceKey, if_match: str | None) -> dict[str, Any] | None:
        return _call(
            lambda: self._service.delete(self._scope, key.kind, key.organization or None, key.name, if_match=if_match)
        )

    def changeset(self, operations: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        return _call(lambda: self._service.changeset(self._scope, operations))

    def prices(self) -> dict[str, Any]:
        return _call(self._service.prices)

    def close(self) -> None:
        dispose = getattr(self._service, "close", None)
        if dispose is not None:
            dispose()


def _call(fn: Callable[[], T]) -> T:
    """Run a service call, turning the backend's errors into the provider's."""
    from tenancy_backend.errors import ServiceError

    try:
        return fn()
    except ServiceError as e:
        raise backend_error_for(e.status, e.detail or e.title, errors=list(e.errors)) from e
    except TenancyError:
        raise
    except Exception as e:
        # Database driver failures (a locked or unreachable database) surface as a retryable error.
        if type(e).__module__.split(".")[0] in {"sqlalchemy", "psycopg", "sqlite3"}:
            raise backend_error_for(503, f"database error: {_first_line(e)}") from e
        raise


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _absolute(url: str) -> str:
    """A SQLite URL with an absolute path (`sqlite:///.tenancy/tenancy.db` names another file elsewhere)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
        return prefix + os.path.abspath(url[len(prefix) :])
    return url

