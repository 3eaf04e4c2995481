"""Exchange API keys at rest: sealed with Fernet (AES-128-CBC plus HMAC-SHA256, from the `cryptography`
package) under a key that lives in the environment (TRADEMASTER_EXCHANGE_KEY), never in the database,
so a copy of the database alone opens no exchange account."""
from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from common.errors import DomainError

NO_KEY = (
    "exchange keys cannot be stored: set TRADEMASTER_EXCHANGE_KEY to a Fernet key "
    "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
)
BAD_KEY = "TRADEMASTER_EXCHANGE_KEY is not a Fernet key (32 url-safe base64-encoded bytes)"
WRONG_KEY = "the exchange keys were sealed under another TRADEMASTER_EXCHANGE_KEY and cannot be opened"


class CredentialsUnavailable(DomainError):
    """No usable key to seal or open exchange keys with."""


def _fernet() -> Fernet:
    key = settings.TRADEMASTER["EXCHANGE_KEY"]
    if not key:
        raise CredentialsUnavailable(NO_KEY)
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        raise CredentialsUnavailable(BAD_KEY) from None


def seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def unseal(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialsUnavailable(WRONG_KEY) from None


def hint(secret: str) -> str:
    """What tells two keys apart on a page: the last four characters, never more."""
    return secret[-4:] if len(secret) >= 12 else ""
