from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models


class ApiToken(models.Model):
    """A bearer token for the JSON API (`Authorization: Bearer <token>`).

    Only the sha256 of the token is stored: it is shown once, when created, and cannot be recovered.
    A stolen database therefore holds no usable token; sha256 rather than a slow password hash because
    the token is 256 random bits, not something a person chose, so there is nothing to brute-force.
    """

    PREFIX_LENGTH = 8

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. the script using it")
    key_hash = models.CharField(
        max_length=64, unique=True, editable=False,
        validators=[RegexValidator(r"^[0-9a-f]{64}$", message="key_hash must be a lowercase sha256 hex digest")],
        help_text="sha256 hex of the token",
    )
    prefix = models.CharField(
        max_length=PREFIX_LENGTH, db_index=True, editable=False,
        help_text="The token's first characters, to tell tokens apart in lists",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
