import json

from django.db import migrations, models

from clips.ingest.analysis import peaks_summary


def summarise_stored_waveforms(apps, schema_editor):
    """Give every stored waveform its peaks summary, read once from its JSON file.

    A file missing or unreadable is left without one: `manage.py ingest` makes it.
    """
    Rendition = apps.get_model("clips", "Rendition")
    for rendition in Rendition.objects.filter(name="waveform", peaks__isnull=True):
        try:
            with rendition.file.open("rb") as data:
                peaks = peaks_summary(json.loads(data.read())["data"])
        except (OSError, ValueError, KeyError):
            continue
        Rendition.objects.filter(pk=rendition.pk).update(peaks=peaks)


class Migration(migrations.Migration):
    dependencies = [("clips", "0008_ingest")]

    operations = [
        migrations.AddField(
            model_name="rendition",
            name="peaks",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.RunPython(summarise_stored_waveforms, migrations.RunPython.noop),
    ]
