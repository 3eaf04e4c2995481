from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiToken
from accounts.services import api_token_revoke

NO_SUCH_TOKEN = "no active API token starts with {prefix!r}"
AMBIGUOUS_PREFIX = "{count} active API tokens start with {prefix!r}; give more of the token"


class Command(BaseCommand):
    help = "Revoke the API token starting with PREFIX (its first 8 characters, as listed in the admin)."

    def add_arguments(self, parser):
        parser.add_argument("prefix", metavar="PREFIX")

    def handle(self, *args, prefix: str, **options):
        # Only the prefix is stored in clear: a longer PREFIX (the whole token, say) is cut to its length.
        active = ApiToken.objects.select_related("user").filter(revoked_at__isnull=True)
        matches = list(active.filter(prefix__startswith=prefix[: ApiToken.PREFIX_LENGTH])[:10])
        if not matches:
            raise CommandError(NO_SUCH_TOKEN.format(prefix=prefix))
        if len(matches) > 1:
            raise CommandError(AMBIGUOUS_PREFIX.format(count=len(matches), prefix=prefix))
        token = api_token_revoke(token=matches[0])
        self.stdout.write(f"Revoked {token} of {token.user}.")
