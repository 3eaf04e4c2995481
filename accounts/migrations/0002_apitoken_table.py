"""The token table takes the accounts app's name, and the content type follows the model, so
permissions already granted on API tokens (auth_permission rows) stay with it."""
from django.db import migrations


def content_type_to_accounts(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label="accounts", model="apitoken").exists():
        ContentType.objects.using(db).filter(app_label="risk", model="apitoken").update(app_label="accounts")


def content_type_to_risk(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label="risk", model="apitoken").exists():
        ContentType.objects.using(db).filter(app_label="accounts", model="apitoken").update(app_label="risk")


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_initial"),
        ("risk", "0002_apitoken_to_accounts"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="apitoken", table=None),
        migrations.RunPython(content_type_to_accounts, content_type_to_risk),
    ]
