from django.db import migrations, models


def summarise_reports(apps, schema_editor):
    # A copy of sessions.models.report_summary_of as it is today: a migration keeps the logic it ran with.
    StrategySession = apps.get_model("training_sessions", "StrategySession")
    with_report = StrategySession.objects.filter(result_data__has_key="report").only("result_data")
    for session in with_report.iterator(chunk_size=200):
        report = session.result_data["report"]
        if report:
            summary = {key: value for key, value in report.items() if not isinstance(value, list)}
            StrategySession.objects.filter(pk=session.pk).update(report_summary=summary)


class Migration(migrations.Migration):

    dependencies = [
        ("training_sessions", "0003_alert"),
    ]

    operations = [
        migrations.AddField(
            model_name="strategysession",
            name="report_summary",
            field=models.JSONField(
                blank=True, editable=False, null=True,
                help_text="The report's metrics, benchmark metrics, alpha and beta without its series; empty without a report",
            ),
        ),
        migrations.RunPython(summarise_reports, migrations.RunPython.noop),
    ]
