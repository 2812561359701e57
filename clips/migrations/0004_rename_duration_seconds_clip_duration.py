from django.db import migrations, models
import django.core.validators


class Migration(migrations.Migration):
    """The service description calls a clip's length `duration` (seconds)."""

    dependencies = [("clips", "0003_clip_newest_first")]

    operations = [
        migrations.RenameField(
            model_name="clip", old_name="duration_seconds", new_name="duration"
        ),
        migrations.AlterField(
            model_name="clip",
            name="duration",
            field=models.FloatField(
                help_text="Length in seconds.",
                validators=[
                    django.core.validators.MinValueValidator(0.1),
                    django.core.validators.MaxValueValidator(3600),
                ],
            ),
        ),
    ]
