import datetime
import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken

# last_used_at is for "is this token still in use?", not an audit log; writing it at most once a
# minute keeps a busy API client from turning every read into a write (SQLite has one writer).
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


def token_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


@transaction.atomic
def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the plaintext, which is not stored and cannot be
    shown again."""
    # Hex, not urlsafe base64: a token starting with "-" reads as an option to every command line it is
    # passed on (revoke_api_token PREFIX, curl, the bench harnesses), one token in 64.
    plaintext = secrets.token_hex(32)  # 256 bits
    token = ApiToken(user=user, name=name, key_hash=token_hash(plaintext), prefix=plaintext[: ApiToken.PREFIX_LENGTH])
    token.full_clean()
    token.save()
    return token, plaintext


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Refuse the token from now on. Revoking a revoked token keeps its first revocation time."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db(fields=["revoked_at"])
    return token


def api_token_authenticate(*, plaintext: str):
    """The active user `plaintext` authenticates, or None (unknown or revoked token, inactive user).
    Records the use in last_used_at."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=token_hash(plaintext), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    # Checked here first, so that a read stays a read: an UPDATE, even of no row, takes SQLite's one
    # write lock, and every API call would queue behind the workers' commits (and each other).
    # Two processes racing here both write a time of now: no harm.
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
