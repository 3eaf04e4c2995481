import datetime
import io
import re
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict

from engine.config import RunConfig
from engine.data import read_csv, synthetic_market
from engine.data.catalog import BUILTINS
from engine.training.trainer import Trainer
from strategies.config import QUICK_EPOCHS
from strategies.demo_data import DATASETS, ROLES, STRATEGIES
from strategies.demo_data import seed as seed_module
from strategies.models import Dataset, Strategy

pytestmark = pytest.mark.django_db

NEW_PASSWORD = re.compile(r"^Created user '(?P<username>[^']+)' .*, password (?P<password>\S+)$", re.M)
STRONG = "correct horse battery staple"


def seed_demo() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def dataset(key: str) -> Dataset:
    return Dataset.objects.get(name=next(d.name for d in DATASETS if d.key == key))


def files_in(directory: Path) -> dict[str, bytes]:
    if not directory.exists():
        return {}
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def snapshot(data_dir: Path) -> dict:
    """Every row seed_demo touches, field by field, and every file it keeps."""
    User = get_user_model()
    return {
        "users": [(model_to_dict(u), sorted(u.groups.values_list("name", flat=True)))
                  for u in User.objects.order_by("pk")],
        "datasets": [(model_to_dict(d), d.created_at) for d in Dataset.objects.order_by("pk")],
        "strategies": [(model_to_dict(s), s.created_at, s.updated_at) for s in Strategy.objects.order_by("pk")],
        "files": files_in(data_dir),
    }


def test_seed_demo_creates_one_user_per_role_in_the_group_of_that_name():
    seed_demo()

    User = get_user_model()
    for role in ROLES:
        user = User.objects.get_by_natural_key(role.name)
        assert list(user.groups.values_list("name", flat=True)) == [role.name]
        assert (user.is_staff, user.is_superuser, user.is_active) == (role.is_staff, role.is_superuser, True)
    assert [r.name for r in ROLES] == ["quant", "operator", "admin"]
    assert [(r.is_staff, r.is_superuser) for r in ROLES] == [(False, False), (True, False), (True, True)]


def test_each_new_password_is_printed_once_and_logs_its_user_in(client):
    printed = {m["username"]: m["password"] for m in NEW_PASSWORD.finditer(seed_demo())}

    assert sorted(printed) == ["admin", "operator", "quant"]
    assert len(set(printed.values())) == 3
    for username, password in printed.items():
        assert client.login(username=username, password=password)
        client.logout()
    again = seed_demo()
    assert "password" not in again and not any(p in again for p in printed.values())


def test_a_password_from_the_environment_is_used_and_not_printed(monkeypatch):
    monkeypatch.setenv("TRADEMASTER_DEMO_ADMIN_PASSWORD", STRONG)

    output = seed_demo()

    admin = get_user_model().objects.get_by_natural_key("admin")
    assert admin.check_password(STRONG)
    assert STRONG not in output
    assert "password from TRADEMASTER_DEMO_ADMIN_PASSWORD" in output
    assert {m["username"] for m in NEW_PASSWORD.finditer(output)} == {"quant", "operator"}


def test_a_weak_password_from_the_environment_is_refused_and_nothing_is_saved(monkeypatch, data_dir):
    monkeypatch.setenv("TRADEMASTER_DEMO_ADMIN_PASSWORD", "admin")

    with pytest.raises(CommandError, match="too similar to the username|too short|too common"):
        seed_demo()

    assert not get_user_model().objects.exists() and not Dataset.objects.exists()
    assert files_in(data_dir) == {}


def test_a_failure_after_the_imports_leaves_no_row_and_no_file(monkeypatch, data_dir):
    placed = []

    def broken(**kwargs):
        placed.extend(files_in(data_dir))
        raise OSError("the disk is full")

    monkeypatch.setattr(seed_module, "strategy_create", broken)

    with pytest.raises(OSError, match="the disk is full"):
        seed_demo()

    assert len(placed) == len(DATASETS)  # the datasets were imported before the failure...
    assert files_in(data_dir) == {}  # ...and their files removed with the rows
    assert not get_user_model().objects.exists() and not Dataset.objects.exists()


def test_a_missing_data_package_is_a_command_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "arch.data", None)  # what `import` sees when arch is not installed

    with pytest.raises(CommandError, match="'arch' package, which is not installed"):
        seed_demo()

    assert not Dataset.objects.exists()


def test_the_sp500_dataset_holds_the_real_prices_that_ship_with_arch():
    from arch.data import sp500

    seed_demo()

    sp = dataset("sp500")
    assert (sp.tickers, sp.n_bars, sp.frequency, sp.periods_per_year) == (["SPX"], 5031, "daily", 252.0)
    assert (sp.start_date, sp.end_date) == (datetime.date(1999, 1, 4), datetime.date(2018, 12, 31))
    market = read_csv(sp.path)
    source = sp500.load()
    for ours, theirs in [("open", "Open"), ("high", "High"), ("low", "Low"), ("close", "Close"),
                         ("adjcp", "Adj Close"), ("volume", "Volume")]:
        np.testing.assert_array_equal(market.prices[ours][:, 0], source[theirs].to_numpy(dtype=float))
    assert market.prices["close"][0, 0] == 1228.099976  # 1999-01-04, as published


def test_the_synthetic_dataset_is_the_engines_builtin_synthetic_market():
    seed_demo()

    stored = read_csv(dataset("synthetic").path)
    builtin = synthetic_market(name="synthetic", **BUILTINS["synthetic"])
    assert stored.tickers == builtin.tickers and len(stored) == len(builtin) == 1500
    np.testing.assert_array_equal(stored.dates, builtin.dates)
    for name, prices in builtin.prices.items():
        np.testing.assert_array_equal(stored.prices[name], prices)
    assert stored.feature_names == builtin.feature_names
    np.testing.assert_array_equal(stored.features, builtin.features)


def test_the_strategies_are_quick_configs_the_engine_can_train(tmp_path):
    seed_demo()

    quant = get_user_model().objects.get_by_natural_key("quant")
    assert Strategy.objects.count() == len(STRATEGIES) == 4
    for demo in STRATEGIES:
        strategy = Strategy.objects.get(owner=quant, name=demo.name)
        config = RunConfig.model_validate(strategy.config)
        assert config.model_dump(mode="json") == strategy.config
        assert (config.task, config.agent) == (strategy.task, strategy.agent) == (demo.task, demo.agent)
        assert config.dataset == strategy.dataset.path == dataset(demo.dataset).path
        assert config.trainer.epochs == QUICK_EPOCHS
        # Builds the splits and envs from the stored file: what a training session does first.
        Trainer(config, run_dir=tmp_path / str(strategy.pk))
    pairs = {(s.task, s.agent, s.dataset.tickers[0]) for s in Strategy.objects.all()}
    assert pairs == {("portfolio_management", "ppo", "SYN00"), ("portfolio_management", "eiie", "SYN00"),
                     ("algorithmic_trading", "dqn", "SPX"), ("order_execution", "ppo", "SPX")}


def test_running_seed_demo_twice_changes_nothing(data_dir):
    seed_demo()
    before = snapshot(data_dir)

    output = seed_demo()

    assert snapshot(data_dir) == before
    assert len(before["files"]) == len(DATASETS)
    assert "Created" not in output and "Imported" not in output
    assert output.count("exists") == len(ROLES) + len(DATASETS) + len(STRATEGIES)


def test_an_existing_user_of_a_role_name_is_left_as_it_is(django_user_model):
    django_user_model.objects.create_user(username="admin", password=STRONG)

    output = seed_demo()

    admin = django_user_model.objects.get_by_natural_key("admin")
    assert (admin.is_staff, admin.is_superuser, admin.groups.count()) == (False, False, 0)
    assert admin.check_password(STRONG)
    assert "User 'admin' exists: left as it is" in output
    assert {m["username"] for m in NEW_PASSWORD.finditer(output)} == {"quant", "operator"}
