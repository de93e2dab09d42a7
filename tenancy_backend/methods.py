"""HTTP method semantics the router leaves out (RFC 9110 §9.3, §15.5.6): HEAD wherever GET is served,
OPTIONS answered with the resource's `Allow`, and every 405 naming all the methods of the resource.

FastAPI makes one route per method, and Starlette's own 405 names the methods of the first route whose path
matched, so `Allow` on `/v1/organizations` said `GET` where `GET, POST` is served. The methods of a path are
read from the routes themselves, never listed twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """The methods served at the request's path, sorted (HEAD with GET, and OPTIONS); [] when no route matches."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods and route.matches(scope)[0] is not Match.NONE:
            methods |= route.methods
    if not methods:
        return []
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods | {"OPTIONS"})


class MethodSemantics:
    """ASGI middleware: HEAD is GET without the body (same status and headers, `Content-Length` included);
    OPTIONS on a served path is 204 with `Allow`, before authentication (it tells only what the OpenAPI
    document tells). Anything else passes through; the router's 405 gets its `Allow` from `allowed_methods`."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes  # the router's live list: routes added after the middleware count too

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method") if scope["type"] == "http" else None
        if method not in ("HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        allowed = allowed_methods(self.routes, scope)
        if method == "OPTIONS" and allowed:
            await _no_content(send, allowed)
        elif method == "HEAD" and "GET" in allowed:
            await self.app({**scope, "method": "GET"}, receive, _bodiless(send))
        else:
            await self.app(scope, receive, send)


async def _no_content(send: Send, allowed: list[str]) -> None:
    headers = [(b"allow", ", ".join(allowed).encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _bodiless(send: Send) -> Send:
    async def send_headers_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_headers_only


__all__ = ["MethodSemantics", "allowed_methods"]
