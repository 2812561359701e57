import hashlib

from django.db import migrations


def digest_existing_audio(apps, schema_editor):
    """Give every stored file its content digest (the stream's ETag) now.

    Otherwise each clip's first burst of listeners after the upgrade would all
    hash the same file at once. A file missing from storage is left for later.
    """
    Clip = apps.get_model("clips", "Clip")
    for clip in Clip.objects.exclude(audio_file="").filter(audio_digest=""):
        digest = hashlib.sha256()
        try:
            with clip.audio_file.storage.open(clip.audio_file.name, "rb") as audio:
                for block in iter(lambda: audio.read(1024 * 1024), b""):
                    digest.update(block)
        except OSError:
            continue
        Clip.objects.filter(pk=clip.pk).update(audio_digest=digest.hexdigest())


class Migration(migrations.Migration):
    dependencies = [("clips", "0005_listeners")]

    operations = [
        migrations.RunPython(digest_existing_audio, migrations.RunPython.noop),
    ]
