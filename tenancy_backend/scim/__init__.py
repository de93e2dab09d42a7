"""SCIM 2.0 for each organization of the tenancy backend (SPEC §8), under /scim/v2/{org}.

    routes        the FastAPI application the API mounts (thin: HTTP in, SCIM documents out)
    provisioning  the operations on one organization: scim2-models parses, the service layer decides
    queries       filter / sort / paging / attributes of list requests (scim2-models)
    mapping       tenancy documents ⇄ SCIM resources (pure)
    models        the served resources and the discovery documents
    errors        SCIM Error documents, with their scimType

`scim_app` is what the API mounts: the application is built, and scim2-models imported, on the first
SCIM request, so that a backend starts (and restarts after a crash) without paying for them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

PREFIX = "/scim/v2"


class scim_app:
    """The SCIM ASGI application, built on first use from the API's state and authentication dependency."""

    def __init__(self, state: Any, scope_dependency: Callable[..., Awaitable[Any]]) -> None:
        self._state = state
        self._scope_dependency = scope_dependency
        self._app: Any = None

    @property
    def app(self) -> Any:
        if self._app is None:
            from tenancy_backend.scim.routes import build_scim_app

            self._app = build_scim_app(self._state, self._scope_dependency)
        return self._app

    @property
    def routes(self) -> list[Any]:
        return list(self.app.routes)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


__all__ = ["PREFIX", "scim_app"]
