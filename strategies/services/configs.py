"""A run config file made into a strategy, the way `manage.py train` takes them: the engine's
RunConfig JSON (engine.config.RunConfig), its dataset imported when it is a file the
platform does not have yet."""
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction

from engine.data.catalog import BUILTINS, builtin_market
from strategies.config import config_sections
from strategies.models import Dataset, Strategy
from strategies.services.datasets import dataset_checksum, dataset_import
from strategies.services.strategies import strategy_create

UNKNOWN_DATASET = (
    "{name!r} is neither a file or folder, nor an imported dataset's name, nor one of the engine's "
    "built-in markets ({builtins})"
)


@transaction.atomic
def strategy_from_config(*, config: dict[str, Any], owner, name: str, base_dir: Path | None = None) -> Strategy:
    """Create a strategy of `owner` that runs `config` (a RunConfig as JSON), named `name` or, when
    `owner` has a strategy of that name, `name (2)`, `name (3)`...

    config["dataset"] may be a CSV file or folder (relative to `base_dir`): the dataset already
    imported from the same bytes is used, else the file is imported (named after it); the name of an
    imported dataset; or an engine built-in ("synthetic"), registered as a dataset whose path is that
    name, so the engine generates exactly the built-in market (engine.data.catalog).

    Raises Django's ValidationError on "dataset" for anything else, and strategy_create's errors
    (pydantic's ValidationError with the field paths for a bad config).
    """
    dataset = dataset_for(name=str(config.get("dataset", "")), base_dir=base_dir)
    return strategy_create(
        owner=owner, name=_free_name(owner, name), task=config.get("task", ""), agent=config.get("agent", ""),
        dataset=dataset, params=config_sections(config),
    )


def dataset_for(*, name: str, base_dir: Path | None = None) -> Dataset:
    """The dataset a config's "dataset" names, imported or registered when need be (see strategy_from_config)."""
    path = Path(name).expanduser()
    if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    if path.exists():
        return _imported(path)
    known = Dataset.objects.filter(name=name).first() or Dataset.objects.filter(path=name).first()
    if known is not None:
        return known
    if name in BUILTINS:
        return _builtin(name)
    raise ValidationError({"dataset": UNKNOWN_DATASET.format(name=name, builtins=", ".join(BUILTINS))})


def _imported(path: Path) -> Dataset:
    path = path.resolve()
    same = Dataset.objects.filter(path=str(path)).first()
    if same is None:
        same = Dataset.objects.filter(checksum=dataset_checksum(path)).order_by("pk").first()
    if same is not None:
        return same
    stem = path.stem if path.is_file() else path.name
    return dataset_import(path=path, name=_free_dataset_name(stem))


def _builtin(name: str) -> Dataset:
    # The whole market, which is what every task's run loads: portfolio management trades all its
    # tickers, a single-asset task the first of them (engine.data.catalog.traded_tickers).
    market = builtin_market(name)
    digest = hashlib.sha256()
    for key in sorted(market.prices):
        digest.update(np.ascontiguousarray(market.prices[key]).tobytes())
    dataset = Dataset(
        name=_free_dataset_name(name),
        frequency=market.frequency,
        periods_per_year=market.periods_per_year,
        tickers=list(market.tickers),
        start_date=np.datetime64(market.dates[0], "D").item(),
        end_date=np.datetime64(market.dates[-1], "D").item(),
        path=name,  # what the engine is given to train on: its own name for the market
        checksum=digest.hexdigest(),  # of the generated prices: a changed generator is noticed
        n_bars=len(market),
    )
    dataset.full_clean()
    dataset.save()
    return dataset


def _free_dataset_name(name: str) -> str:
    candidate, n = name, 1
    while Dataset.objects.filter(name=candidate).exists():
        n += 1
        candidate = f"{name} ({n})"
    return candidate


def _free_name(owner, name: str) -> str:
    candidate, n = name, 1
    while Strategy.objects.filter(owner=owner, name=candidate).exists():
        n += 1
        candidate = f"{name} ({n})"
    return candidate
