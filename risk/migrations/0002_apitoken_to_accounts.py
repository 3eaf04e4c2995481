"""API tokens are authentication, not risk: the model moved to the accounts app
(accounts/migrations/0001), which keeps the table. Here the model leaves this app's state only."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("risk", "0001_initial"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ApiToken")],
            database_operations=[],
        ),
    ]
