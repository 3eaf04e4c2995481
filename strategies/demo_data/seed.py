"""What `manage.py seed_demo` creates: a user per role, the demo datasets and strategies that train in
about a minute on a CPU. Running it again creates only what is missing and changes nothing else.
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from strategies.demo_data.markets import sp500_frame, synthetic_frame, write_csv
from strategies.models import Dataset, Strategy
from strategies.services import dataset_import, strategy_create

PASSWORD_ENV = "TRADEMASTER_DEMO_{role}_PASSWORD"
PRESET = "quick"


@dataclass(frozen=True)
class Role:
    """A Django group, and the demo user of the same name who belongs to it."""

    name: str
    is_staff: bool = False
    is_superuser: bool = False

    @property
    def password_env(self) -> str:
        return PASSWORD_ENV.format(role=self.name.upper())


ROLES = (
    Role("quant"),
    Role("operator", is_staff=True),
    Role("admin", is_staff=True, is_superuser=True),
)
OWNER = "quant"  # who owns the demo strategies


@dataclass(frozen=True)
class DemoDataset:
    key: str
    name: str
    frame: Callable[[], pd.DataFrame]


DATASETS = (
    DemoDataset("sp500", "S&P 500 daily 1999-2018 (demo)", sp500_frame),
    DemoDataset("synthetic", "Synthetic market, 5 assets (demo)", synthetic_frame),
)


@dataclass(frozen=True)
class DemoStrategy:
    name: str
    task: str
    agent: str
    dataset: str  # a DemoDataset key
    description: str


STRATEGIES = (
    DemoStrategy("PPO portfolio (demo)", "portfolio_management", "ppo", "synthetic",
                 "PPO allocating across the five synthetic assets and cash."),
    DemoStrategy("EIIE portfolio (demo)", "portfolio_management", "eiie", "synthetic",
                 "EIIE, the policy-gradient portfolio network of Jiang et al. (2017), on the synthetic assets."),
    DemoStrategy("DQN S&P 500 trading (demo)", "algorithmic_trading", "dqn", "sp500",
                 "DQN going long, flat or short the S&P 500 every day."),
    DemoStrategy("PPO S&P 500 execution (demo)", "order_execution", "ppo", "sp500",
                 "PPO working an order in the S&P 500 against the day's volume."),
)


@dataclass
class NewUser:
    user: object
    role: Role
    password: str | None  # None: it came from role.password_env and is not repeated


@dataclass
class SeedResult:
    new_users: list[NewUser] = field(default_factory=list)
    existing_users: list[str] = field(default_factory=list)
    new_datasets: list[Dataset] = field(default_factory=list)
    existing_datasets: list[Dataset] = field(default_factory=list)
    new_strategies: list[Strategy] = field(default_factory=list)
    existing_strategies: list[Strategy] = field(default_factory=list)


@transaction.atomic
def demo_seed(*, environ: Mapping[str, str] = os.environ) -> SeedResult:
    """Create what is missing of ROLES (groups and users), DATASETS and STRATEGIES, in one transaction.

    A new user's password is environ[role.password_env] when set (checked by AUTH_PASSWORD_VALIDATORS),
    else a random one, returned so it can be shown once. Existing users, datasets and strategies (by
    username, dataset name, and owner and strategy name) are left exactly as they are.

    Raises DemoDataUnavailable when the `arch` package is missing, Django's ValidationError for a password
    from the environment that the validators refuse, and the errors of dataset_import and
    strategy_create. Nothing is saved, and no dataset file left behind, when it raises.
    """
    result = SeedResult()
    try:
        for role in ROLES:
            _seed_user(role, environ, result)
        datasets = {demo.key: _seed_dataset(demo, result) for demo in DATASETS}
        owner = get_user_model().objects.get_by_natural_key(OWNER)
        for demo in STRATEGIES:
            _seed_strategy(demo, owner=owner, dataset=datasets[demo.dataset], result=result)
    except BaseException:
        # The rows roll back with the transaction; the files dataset_import placed would not.
        for dataset in result.new_datasets:
            _remove(Path(dataset.path))
        raise
    return result


def _seed_user(role: Role, environ: Mapping[str, str], result: SeedResult) -> None:
    group, _ = Group.objects.get_or_create(name=role.name)
    User = get_user_model()
    if User.objects.filter(**{User.USERNAME_FIELD: role.name}).exists():
        result.existing_users.append(role.name)
        return
    user = User(**{User.USERNAME_FIELD: role.name}, is_staff=role.is_staff, is_superuser=role.is_superuser)
    given = environ.get(role.password_env, "")
    if given:
        validate_password(given, user)
    password = given or secrets.token_urlsafe(12)
    user.set_password(password)
    user.save()
    user.groups.add(group)
    result.new_users.append(NewUser(user=user, role=role, password=None if given else password))


def _seed_dataset(demo: DemoDataset, result: SeedResult) -> Dataset:
    existing = Dataset.objects.filter(name=demo.name).first()
    if existing is not None:
        result.existing_datasets.append(existing)
        return existing
    with tempfile.TemporaryDirectory(prefix="trademaster-demo-") as tmp:
        path = write_csv(demo.frame(), Path(tmp) / f"{demo.key}.csv")
        dataset = dataset_import(path=path, name=demo.name)
    result.new_datasets.append(dataset)
    return dataset


def _seed_strategy(demo: DemoStrategy, *, owner, dataset: Dataset, result: SeedResult) -> None:
    existing = Strategy.objects.filter(owner=owner, name=demo.name).first()
    if existing is not None:
        result.existing_strategies.append(existing)
        return
    strategy = strategy_create(
        owner=owner, name=demo.name, description=demo.description, task=demo.task, agent=demo.agent,
        dataset=dataset, preset=PRESET,
    )
    result.new_strategies.append(strategy)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
