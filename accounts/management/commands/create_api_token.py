from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.services import api_token_create

NO_SUCH_USER = "no user named {username!r}"


class Command(BaseCommand):
    help = "Create an API token for USER and print it. It is shown this once and never stored in clear."

    def add_arguments(self, parser):
        parser.add_argument("username", metavar="USER")
        parser.add_argument("--name", default="manage.py", help="What the token is for (default: manage.py)")

    def handle(self, *args, username: str, name: str, **options):
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(NO_SUCH_USER.format(username=username)) from None
        token, plaintext = api_token_create(user=user, name=name)
        # The token alone on stdout, so `TOKEN=$(manage.py create_api_token ada)` works; the rest on stderr.
        self.stdout.write(plaintext)
        self.stderr.write(f"Token {token.prefix}… ({name}) for {username}. Store it now: it cannot be shown again.")
