from django.contrib.auth.management import create_permissions
from django.db import migrations

CURATOR_PERMISSIONS = ["add_clip", "change_clip", "view_clip"]


def create_curators_group(apps, schema_editor):
    # Permissions are normally created after migrate; the group needs them now.
    app_config = apps.get_app_config("clips")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="Curators")
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="clips", codename__in=CURATOR_PERMISSIONS
        )
    )


def delete_curators_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Curators").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("clips", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_curators_group, delete_curators_group),
    ]
