"""ListenProgress.slots_heard counted by bit_count on PostgreSQL (clips.models.SlotsHeard).

PostgreSQL before 17 cannot change a generated column's expression, so the column
(and the index that covers it) is made again: a rewrite of the progress table.
"""

import clips.models
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clips", "0017_listen_progress"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="listenprogress", name="listen_progress_stats"),
        migrations.RemoveField(model_name="listenprogress", name="slots_heard"),
        migrations.AddField(
            model_name="listenprogress",
            name="slots_heard",
            field=models.GeneratedField(
                db_persist=True,
                expression=clips.models.SlotsHeard("heard_0", "heard_1", "heard_2", "heard_3"),
                output_field=models.IntegerField(),
            ),
        ),
        migrations.AddIndex(
            model_name="listenprogress",
            index=models.Index(
                fields=["clip"],
                include=("parts_heard", "slots_heard", "window_seconds"),
                name="listen_progress_stats",
            ),
        ),
    ]
