"""Alembic environment for the tenancy backend.

The service runs migrations programmatically (`tenancy_backend.db.migrate`) and hands its connection
over in `config.attributes["connection"]`; the command line can run them too with `-x url=...`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from tenancy_backend.db import create_db_engine, metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("pass the database with: alembic -x url=sqlite:///path upgrade head")
    engine = create_db_engine(url)
    with engine.connect() as conn:
        conn.execution_options(tenancy_write=True)
        _run(conn)
        conn.commit()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run them against a database")
run_migrations_online()
