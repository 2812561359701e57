"""Each clip's play count and last play move onto its row, where "most played" can
be an index (0016); the separate table of totals goes."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def totals_onto_clips(apps, schema_editor):
    Clip = apps.get_model("clips", "Clip")
    PlayTotal = apps.get_model("clips", "PlayTotal")
    total = PlayTotal.objects.filter(clip_id=OuterRef("pk"))
    Clip.objects.filter(pk__in=PlayTotal.objects.values("clip_id")).update(
        play_count=Subquery(total.values("play_count")[:1]),
        last_played_at=Subquery(total.values("last_played_at")[:1]),
    )


def totals_off_clips(apps, schema_editor):
    Clip = apps.get_model("clips", "Clip")
    PlayTotal = apps.get_model("clips", "PlayTotal")
    PlayTotal.objects.bulk_create(
        PlayTotal(clip_id=pk, play_count=count, last_played_at=last)
        for pk, count, last in Clip.objects.filter(play_count__gt=0).values_list(
            "pk", "play_count", "last_played_at"
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("clips", "0014_previews"),
    ]

    operations = [
        migrations.AddField(
            model_name="clip",
            name="play_count",
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="clip",
            name="last_played_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(totals_onto_clips, totals_off_clips),
        migrations.DeleteModel(name="PlayTotal"),
    ]
