from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("training_sessions", "0004_session_report_summary"),
    ]

    operations = [
        migrations.AddField(
            model_name="strategysession",
            name="retry_reason",
            field=models.TextField(blank=True, help_text="Why its current attempt was started again, if it was"),
        ),
        migrations.AddField(
            model_name="strategysession",
            name="threads",
            field=models.PositiveSmallIntegerField(
                blank=True, null=True,
                help_text="torch threads its latest run was given (sessions.services.training_threads)",
            ),
        ),
    ]
