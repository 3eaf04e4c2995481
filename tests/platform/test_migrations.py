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


@pytest.mark.django_db(transaction=True)
def test_api_tokens_move_to_the_accounts_app_without_losing_a_token_or_a_permission():
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from accounts.models import ApiToken
    from accounts.services import api_token_authenticate, token_hash

    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    before = [("risk", "0001_initial"), ("accounts", None)]
    try:
        executor.migrate(before)
        assert "risk_apitoken" in connection.introspection.table_names()
        # The content type went back with the table: the permissions granted on it are its rows.
        old_type = ContentType.objects.get(app_label="risk", model="apitoken")
        permissions = set(Permission.objects.filter(content_type=old_type).values_list("pk", flat=True))
        assert permissions
        old = executor.loader.project_state([("risk", "0001_initial")]).apps
        user = old.get_model("auth", "User").objects.create(username="ada", is_active=True)
        old.get_model("risk", "ApiToken").objects.create(
            user=user, name="cron", key_hash=token_hash("a" * 64), prefix="a" * 8,
        )

        MigrationExecutor(connection).migrate(leaves)

        tables = connection.introspection.table_names()
        assert "accounts_apitoken" in tables and "risk_apitoken" not in tables
        token = ApiToken.objects.get()
        assert (token.name, token.prefix, token.user.username) == ("cron", "a" * 8, "ada")
        assert api_token_authenticate(plaintext="a" * 64).username == "ada"
        new_type = ContentType.objects.get_for_model(ApiToken)
        assert new_type.pk == old_type.pk
        assert set(Permission.objects.filter(content_type=new_type).values_list("pk", flat=True)) == permissions
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
