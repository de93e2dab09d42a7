"""Many rows in one statement, per dialect: a multi-row INSERT on SQLite, one JSON parameter unpacked by
`json_to_recordset` on PostgreSQL (`db.RecordsInsert`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Result, Table

from tenancy_backend.db import RecordsInsert, claims, refs, resources
from tenancy_backend.documents import DOCUMENT_COLUMNS
from tenancy_backend.transaction import Tx


def insert_rows(tx: Tx, table: Table, rows: list[dict[str, Any]]) -> Result[Any]:
    """A run of rows in one statement: the rows as one JSON parameter on PostgreSQL (see RecordsInsert), a
    multi-row INSERT on SQLite (SQLAlchemy's executemany); resources come back as DOCUMENT_COLUMNS."""
    if tx.conn.dialect.name == "postgresql":
        records = _RECORDS_INSERTS[table.name]
        return tx.conn.execute(records.statement, records.parameters(rows))
    return tx.conn.execute(_RUN_INSERTS[table.name], rows)


_RUN_INSERTS = {
    "resources": resources.insert().returning(*DOCUMENT_COLUMNS),
    "claims": claims.insert(),
    "refs": refs.insert(),
}
_RECORDS_INSERTS = {
    "resources": RecordsInsert(resources, returning=DOCUMENT_COLUMNS),
    "claims": RecordsInsert(claims),
    "refs": RecordsInsert(refs),
}


__all__ = ["insert_rows"]
