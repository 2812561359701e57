"""The catalogue at scale: full-text search and an index for every order.

Not atomic, so that a live catalogue of a million clips takes it: the search
column is added empty (no table rewrite), filled a batch at a time, and every index
is built CONCURRENTLY on PostgreSQL (writes go on meanwhile). On SQLite the
indexes are plain and the search column stays empty (clips.catalogue.search).
"""

import django.contrib.postgres.search
from django.db import migrations, models

from clips.migrations._operations import AddIndexConcurrently, PostgresSQL, in_batches

# The "clips" text search configuration: English stemming, accents folded
# (unaccent as a filtering dictionary before the stemmer), case folded.
SEARCH_CONFIGURATION = """
CREATE TEXT SEARCH CONFIGURATION clips (COPY = pg_catalog.english);
ALTER TEXT SEARCH CONFIGURATION clips
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;
"""

# Title weighs A, description B (ts_rank counts A over B); only a change of either
# computes it again, not a play counted on the row.
SEARCH_TRIGGER = """
CREATE FUNCTION clips_clip_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector :=
        setweight(to_tsvector('clips', coalesce(NEW.title, '')), 'A')
        || setweight(to_tsvector('clips', coalesce(NEW.description, '')), 'B');
    RETURN NEW;
END
$$;
CREATE TRIGGER clips_clip_search_vector
    BEFORE INSERT OR UPDATE OF title, description ON clips_clip
    FOR EACH ROW EXECUTE FUNCTION clips_clip_search_vector();
"""


def search_vectors_fill(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    in_batches(
        schema_editor,
        table="clips_clip",
        # Setting the title to itself runs the trigger: one definition of the vector.
        sql=(
            "UPDATE clips_clip SET title = title "
            "WHERE id BETWEEN %(first)s AND %(last)s AND search_vector IS NULL"
        ),
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("clips", "0015_plays_on_clips"),
    ]

    operations = [
        # Trusted since PostgreSQL 13: the database's owner may create it.
        PostgresSQL(
            "CREATE EXTENSION IF NOT EXISTS unaccent;",
            "DROP EXTENSION IF EXISTS unaccent;",
        ),
        PostgresSQL(
            SEARCH_CONFIGURATION, "DROP TEXT SEARCH CONFIGURATION clips;"
        ),
        migrations.AddField(
            model_name="clip",
            name="search_vector",
            field=django.contrib.postgres.search.SearchVectorField(
                editable=False, null=True
            ),
        ),
        PostgresSQL(
            SEARCH_TRIGGER,
            "DROP TRIGGER clips_clip_search_vector ON clips_clip;"
            "DROP FUNCTION clips_clip_search_vector();",
        ),
        migrations.RunPython(search_vectors_fill, migrations.RunPython.noop),
        PostgresSQL(
            "CREATE INDEX CONCURRENTLY clip_search ON clips_clip "
            "USING gin (search_vector);",
            "DROP INDEX CONCURRENTLY clip_search;",
        ),
        AddIndexConcurrently(
            model_name="clip",
            index=models.Index(fields=["title", "id"], name="clip_title"),
        ),
        AddIndexConcurrently(
            model_name="clip",
            index=models.Index(fields=["duration", "id"], name="clip_duration"),
        ),
        AddIndexConcurrently(
            model_name="clip",
            index=models.Index(fields=["play_count", "id"], name="clip_plays"),
        ),
        AddIndexConcurrently(
            model_name="clip",
            index=models.Index(
                fields=["genre", "-created_at", "-id"], name="clip_genre_newest"
            ),
        ),
        AddIndexConcurrently(
            model_name="clip",
            index=models.Index(
                fields=["genre", "title", "id"], name="clip_genre_title"
            ),
        ),
        AddIndexConcurrently(
            model_name="clip",
            index=models.Index(
                fields=["genre", "duration", "id"], name="clip_genre_duration"
            ),
        ),
        AddIndexConcurrently(
            model_name="clip",
            index=models.Index(
                fields=["genre", "play_count", "id"], name="clip_genre_plays"
            ),
        ),
        # Every genre index above begins with the genre: its own is not needed.
        migrations.AlterField(
            model_name="clip",
            name="genre",
            field=models.CharField(
                choices=[
                    ("ambient", "Ambient"),
                    ("acoustic", "Acoustic"),
                    ("classical", "Classical"),
                    ("electronic", "Electronic"),
                    ("field-recording", "Field recording"),
                    ("hip-hop", "Hip-hop"),
                    ("jazz", "Jazz"),
                    ("pop", "Pop"),
                    ("rock", "Rock"),
                    ("tech-house", "Tech house"),
                    ("other", "Other"),
                ],
                max_length=20,
            ),
        ),
    ]
