from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Who someone is and what they may do: API tokens now; roles and a second factor next."""

    name = "accounts"
    verbose_name = "Accounts"
