import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_migrations_match_the_models():
    # makemigrations --check exits 1 (SystemExit) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_the_report_summary_migration_summarises_the_reports_already_stored():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("training_sessions", "0003_alert")], [("training_sessions", "0004_session_report_summary")]
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        owner = old.get_model("auth", "User").objects.create(username="old")
        dataset = old.get_model("strategies", "Dataset").objects.create(
            name="d", frequency="1d", tickers=["A"], start_date="2020-01-01", end_date="2020-12-31", path="p",
            checksum="0" * 64, n_bars=10, periods_per_year=252.0,
        )
        strategy = old.get_model("strategies", "Strategy").objects.create(
            owner=owner, name="s", task="portfolio_management", agent="ppo", dataset=dataset, config={},
        )
        Session = old.get_model("training_sessions", "StrategySession")
        report = {"metrics": {"sharpe": 1.2}, "alpha": 0.1, "equity_curve": [{"value": 1.0}]}
        with_report = Session.objects.create(strategy=strategy, session_type="training", result_data={"report": report})
        without = Session.objects.create(strategy=strategy, session_type="training", result_data={"epochs_done": 1})

        executor = MigrationExecutor(connection)
        executor.migrate(after)
        new = executor.loader.project_state(after).apps.get_model("training_sessions", "StrategySession")

        assert new.objects.get(pk=with_report.pk).report_summary == {"metrics": {"sharpe": 1.2}, "alpha": 0.1}
        assert new.objects.get(pk=without.pk).report_summary is None
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
