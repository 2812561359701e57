from django.core.management.base import BaseCommand, CommandParser

from clips.services import curator_create


class Command(BaseCommand):
    help = (
        "Create or update a curator (staff, Curators group) and print their API token."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")

    def handle(self, *args, username: str, email: str, **options) -> None:
        user, token = curator_create(username=username, email=email)
        if not user.has_usable_password():
            self.stderr.write(
                "To sign in to the admin, set a password: "
                f"manage.py changepassword {username}"
            )
        self.stdout.write(token.key)
