"""API tokens moved here from the risk app, where they began: this migration takes the model over
in Django's state only, on the table the risk app created (risk_apitoken); 0002 renames the table.
No row is copied, so no token is lost."""
import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("risk", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiToken",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(help_text="What the token is for, e.g. the script using it", max_length=100)),
                        ("key_hash", models.CharField(editable=False, help_text="sha256 hex of the token", max_length=64, unique=True, validators=[django.core.validators.RegexValidator("^[0-9a-f]{64}$", message="key_hash must be a lowercase sha256 hex digest")])),
                        ("prefix", models.CharField(db_index=True, editable=False, help_text="The token's first characters, to tell tokens apart in lists", max_length=8)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_used_at", models.DateTimeField(blank=True, editable=False, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, editable=False, null=True)),
                        ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="api_tokens", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "ordering": ["-created_at"],
                        "db_table": "risk_apitoken",
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
