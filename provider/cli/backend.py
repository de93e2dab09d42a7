"""`tenancy serve`, `tenancy token create|revoke`, `tenancy billing deposit`: the backend's own commands.

`serve` runs the HTTP API under uvicorn; the others work directly on the database, like an operator would.
This is one of the two provider modules allowed to import `tenancy_backend` (see docs/architecture.md).
"""

from __future__ import annotations

import gc
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import click

from tenancy_kinds.defaults import DEFAULT_AUTH_FAILURE_LIMIT, DEFAULT_DATABASE_URL

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`3600`, `90s`, `15m`, `12h`, `30d`, `2w`, or combinations such as `1h30m`."""
    value = text.strip().lower()
    if value.isdigit():
        seconds = int(value)
    elif value and _DURATION.sub("", value) == "":
        seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(value))
    else:
        raise click.BadParameter(f"{text!r} is not a duration; use e.g. 3600, 90s, 15m, 12h, 30d or 1h30m")
    if seconds <= 0:
        raise click.BadParameter("a duration must be positive")
    return timedelta(seconds=seconds)


def db_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        "db_url",
        metavar="URL",
        envvar="TENANCY_DB",
        default=DEFAULT_DATABASE_URL,
        show_default=True,
        help="sqlite:///PATH or postgresql://USER@HOST/DB (fallback: $TENANCY_DB).",
    )(fn)


@contextmanager
def _service(db_url: str, **kwargs: Any) -> Iterator[Any]:
    """The backend service on `db_url`; its refusals become click errors (exit 1, no traceback)."""
    from tenancy_backend.errors import ServiceError
    from tenancy_backend.service import Service

    try:
        service = Service(db_url, **kwargs)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    except ServiceError as e:
        raise click.ClickException(str(e)) from e
    try:
        yield service
    except ServiceError as e:
        raise click.ClickException(str(e)) from e
    finally:
        service.close()


def _prices(options: tuple[str, ...]) -> dict[str, str] | None:
    from tenancy_kinds.billing import parse_price_options

    env = [p for p in os.environ.get("TENANCY_PRICES", "").split(",") if p.strip()]
    try:
        prices = parse_price_options([*env, *options])
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--price") from e
    return prices or None


# --- serve ----------------------------------------------------------------------------------------


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    envvar="TENANCY_RATE_LIMIT",
    help="Requests per second per token (token bucket); off by default.",
)
@click.option(
    "--auth-failure-limit",
    type=click.IntRange(min=0),
    envvar="TENANCY_AUTH_FAILURE_LIMIT",
    default=DEFAULT_AUTH_FAILURE_LIMIT,
    show_default=True,
    help="Failed authentications per client address and token per minute before 429 (0: no limit).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    envvar="TENANCY_LOG_LEVEL",
    default="info",
    show_default=True,
    help="Server log verbosity (request bodies, tokens and passwords are never logged).",
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option(
    "--price",
    "price_options",
    multiple=True,
    metavar="TIER=AMOUNT",
    help="Monthly price per user, e.g. --price entry=4.00 (repeatable; also $TENANCY_PRICES=entry=4.00,pro=8.00).",
)
def serve(
    db_url: str,
    host: str,
    port: int,
    rate_limit: float | None,
    auth_failure_limit: int,
    log_level: str,
    workers: int,
    price_options: tuple[str, ...],
) -> None:
    """Run the tenancy backend (HTTP API) on a database, creating and migrating it first."""
    import uvicorn

    from tenancy_backend.api import build_app
    from tenancy_backend.db import redact_url

    prices = _prices(price_options)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s: %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    with _service(db_url, prices=prices) as service:
        click.echo(
            f"Tenancy backend listening on http://{host}:{bound_port} (database: {redact_url(db_url)})", err=False
        )
        sys.stdout.flush()
        if workers == 1:
            app = build_app(service, rate_limit, auth_failure_limit)
            config = uvicorn.Config(app, log_level=log_level, access_log=True, timeout_graceful_shutdown=5)
            # What start-up built (modules, the app, the models) lives as long as the process: out of the
            # collector's sight, an export of 100,000 documents spends ~20% less time in collections.
            gc.freeze()
            uvicorn.Server(config).run(sockets=[sock])
            return
    # Several workers: each process builds its own app from the environment, on the shared socket.
    os.environ["TENANCY_DB"] = db_url
    if rate_limit:
        os.environ["TENANCY_RATE_LIMIT"] = str(rate_limit)
    os.environ["TENANCY_AUTH_FAILURE_LIMIT"] = str(auth_failure_limit)
    if prices:
        os.environ["TENANCY_PRICES"] = ",".join(f"{k}={v}" for k, v in prices.items())
    uvicorn.run(
        "tenancy_backend.api:app_from_env",
        factory=True,
        fd=sock.fileno(),
        workers=workers,
        log_level=log_level,
        access_log=True,
        timeout_graceful_shutdown=5,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Without TCP_NODELAY a keep-alive response waits ~40 ms for a delayed ACK between its headers and body.
    # asyncio sets it on accepted sockets only when the listener says IPPROTO_TCP; the option set on the
    # listener is inherited by accepted sockets on Linux (the --workers path, where uvicorn re-wraps the fd).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


# --- token ----------------------------------------------------------------------------------------


@click.group()
def token() -> None:
    """Create and revoke API tokens (stored hashed; a token is shown once)."""


@token.command("create")
@click.option("--organization", metavar="ORG", help="Scope the token to this organization and everything below it.")
@click.option("--legal-representative", is_flag=True, help="The token may grant the legal-representative role.")
@click.option("--expires-in", metavar="DURATION", help="e.g. 30d, 12h, 90m (default: never).")
@db_option
def token_create(organization: str | None, legal_representative: bool, expires_in: str | None, db_url: str) -> None:
    """Print a new API token alone on its line of standard output."""
    expiry = parse_duration(expires_in) if expires_in else None
    with _service(db_url) as service:
        value = service.create_token(organization, legal_representative, expiry)
    scope = f"organization {organization!r}" if organization else "the whole backend (root)"
    click.echo(f"Created a token for {scope}; it is shown once, store it now.", err=True)
    click.echo(value)


@token.command("revoke")
@click.argument("token_value", metavar="TOKEN")
@db_option
def token_revoke(token_value: str, db_url: str) -> None:
    """Revoke a token: it stops working at once."""
    with _service(db_url) as service:
        service.revoke_token(token_value)
    click.echo("Token revoked.", err=True)


# --- billing --------------------------------------------------------------------------------------


@click.group()
def billing() -> None:
    """Billing operations on the backend's database."""


@billing.command("deposit")
@click.option("--organization", required=True, metavar="ORG")
@click.option("--amount", required=True, metavar="AMOUNT", help="e.g. 50 or 50.00 (in the price currency).")
@db_option
def billing_deposit(organization: str, amount: str, db_url: str) -> None:
    """Add a prepaid deposit to an organization's balance."""
    from tenancy_backend.scope import Scope

    with _service(db_url) as service:
        document = service.deposit(Scope.root(), organization, amount)
    balance = document["status"]["balance"]
    click.echo(f"Deposited {amount} to {organization}; balance {balance['amount']} {balance['currency']}.")


def register(group: click.Group) -> None:
    group.add_command(serve)
    group.add_command(token)
    group.add_command(billing)


__all__ = ["parse_duration", "register"]
