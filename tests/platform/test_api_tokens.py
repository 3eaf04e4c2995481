import hashlib
import re

import pytest
from django.core.management import CommandError, call_command

from accounts.management.commands.create_api_token import NO_SUCH_USER
from accounts.management.commands.revoke_api_token import NO_SUCH_TOKEN
from accounts.models import ApiToken
from accounts.services import api_token_authenticate, api_token_create, api_token_revoke

pytestmark = pytest.mark.django_db


def test_api_token_create_stores_only_the_hash_and_a_prefix(user):
    token, plaintext = api_token_create(user=user, name="notebook")

    token.refresh_from_db()
    # 256 bits in hex: no token starts with "-", which a command line would read as an option.
    assert re.fullmatch(r"[0-9a-f]{64}", plaintext)
    assert token.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert token.prefix == plaintext[:8]
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert plaintext not in {str(value) for value in stored.values()}


def test_a_token_authenticates_its_user_and_records_the_use(user):
    token, plaintext = api_token_create(user=user, name="notebook")

    assert api_token_authenticate(plaintext=plaintext) == user
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_unknown_revoked_and_inactive_users_tokens_authenticate_no_one(user):
    token, plaintext = api_token_create(user=user, name="notebook")
    assert api_token_authenticate(plaintext=plaintext + "x") is None

    user.is_active = False
    user.save()
    assert api_token_authenticate(plaintext=plaintext) is None

    user.is_active = True
    user.save()
    api_token_revoke(token=token)
    assert api_token_authenticate(plaintext=plaintext) is None


def test_revoking_twice_keeps_the_first_revocation_time(user):
    token, _ = api_token_create(user=user, name="notebook")

    first = api_token_revoke(token=token).revoked_at
    again = api_token_revoke(token=ApiToken.objects.get(pk=token.pk)).revoked_at

    assert first is not None and again == first


def test_create_api_token_prints_a_token_that_authenticates(user, client, capsys):
    call_command("create_api_token", "ada", "--name", "cron job")

    plaintext = capsys.readouterr().out.strip()
    assert ApiToken.objects.get().name == "cron job"
    response = client.get("/api/strategies", headers={"Authorization": f"Bearer {plaintext}"})
    assert response.status_code == 200


def test_create_api_token_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match=NO_SUCH_USER.format(username="nobody")):
        call_command("create_api_token", "nobody")


def test_revoke_api_token_revokes_by_prefix(user, client, capsys):
    token, plaintext = api_token_create(user=user, name="notebook")

    call_command("revoke_api_token", token.prefix)

    assert ApiToken.objects.get().revoked_at is not None
    assert "Revoked notebook" in capsys.readouterr().out
    assert client.get("/api/strategies", headers={"Authorization": f"Bearer {plaintext}"}).status_code == 401
    with pytest.raises(CommandError, match=NO_SUCH_TOKEN.format(prefix=token.prefix)):
        call_command("revoke_api_token", token.prefix)
