"""Migration operations for a catalogue that stays open while it migrates.

Not a migration (the loader skips names starting with "_"): the operations that
0016 and later migrations share.
"""

import sys

from django.contrib.postgres import operations as postgres
from django.core.management.base import OutputWrapper
from django.db import migrations

from clips.management.progress import progress_show


class AddIndexConcurrently(postgres.AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL, so that writes go on while a
    million rows are indexed; a plain index elsewhere (SQLite)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        operation = _on(schema_editor, postgres.AddIndexConcurrently)
        operation.database_forwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        operation = _on(schema_editor, postgres.AddIndexConcurrently)
        operation.database_backwards(
            self, app_label, schema_editor, from_state, to_state
        )


def _on(schema_editor, on_postgres: type) -> type:
    postgresql = schema_editor.connection.vendor == "postgresql"
    return on_postgres if postgresql else migrations.AddIndex


class PostgresSQL(migrations.RunSQL):
    """SQL that only PostgreSQL has (triggers, text search); nothing elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def in_batches(schema_editor, *, table: str, sql: str, batch: int = 10_000) -> None:
    """Run `sql` (an UPDATE with `%(first)s` and `%(last)s` bounds on id) over
    `table` a batch of ids at a time, each batch its own transaction (the
    migration is not atomic): rows stay locked for one batch only. A progress bar
    on stderr when there are rows."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT min(id), max(id) FROM {table}")  # noqa: S608
        first, last = cursor.fetchone()
        if first is None:
            return
        stderr = OutputWrapper(sys.stderr)
        for start in range(first, last + 1, batch):
            cursor.execute(sql, {"first": start, "last": start + batch - 1})
            done = min(start + batch, last + 1) - first
            progress_show(stderr, done, last + 1 - first)
