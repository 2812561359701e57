from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = (
        "Create (or update) a curator: staff user in the Curators group, "
        "and print their API token."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")

    def handle(self, *args, username: str, email: str, **options) -> None:
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"email": email, "is_staff": True}
        )
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        user.groups.add(Group.objects.get(name="Curators"))
        token, _ = Token.objects.get_or_create(user=user)
        if created:
            self.stderr.write(
                f"Created {username}; set a password for the admin with "
                f"`manage.py changepassword {username}`."
            )
        self.stdout.write(token.key)
