import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from engine.data import DataError, MarketData, read_csv
from strategies.config import config_build, config_sections, deep_merge
from strategies.models import Dataset, Strategy
from strategies.selectors import STRATEGY_NOT_FOUND, sees_all_strategies
from trademaster_web.errors import Conflict, NotFound

DATASET_NAME_TAKEN = "a dataset named {name!r} already exists"
DATASET_PATH_MISSING = "no such file or folder: {path}"
DATASET_FOLDER_EMPTY = "the folder {path} holds no .csv file"
STRATEGY_NAME_TAKEN = "you already have a strategy named {name!r}"
STRATEGY_NOT_YOURS = "strategy {pk} belongs to {owner}; only its owner or a superuser can change it"

_COPY_CHUNK = 1 << 20


# ------------------------------------------------------------------------------------------ datasets

def dataset_import(*, path: str | os.PathLike, name: str) -> Dataset:
    """Import a CSV file, or a folder of CSV files read together (e.g. train, valid, test), as a Dataset.

    The files are validated by the engine's reader and copied into TRADEMASTER["DATA_DIR"], so the
    dataset no longer depends on where it was imported from; Dataset.path is the copy (a file, or a
    folder for several files) and what the engine is given to train on.

    The checksum is the sha256 of the file; for a folder, the sha256 of `sha256sum`'s output over its
    CSV files in name order ("<hex digest>  <file name>" lines).

    Raises ValidationError (the path does not exist, the name is blank or too long), Conflict (the
    name is taken), or the engine's DataError naming the file, line and column of the first problem.
    Nothing is saved, and no file left behind, when it raises.
    """
    source = Path(path).expanduser()
    files = _csv_files(source)
    single = source.is_file()
    if Dataset.objects.filter(name=name).exists():
        raise Conflict(DATASET_NAME_TAKEN.format(name=name), field="name")

    data_dir = Path(settings.TRADEMASTER["DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    # Staged inside DATA_DIR, so moving into place is a rename on the same file system. The copies are
    # what is read, so what was validated is exactly what is kept, even if the source changes meanwhile.
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=data_dir))
    placed: Path | None = None
    try:
        digests = {f.name: _copy_hashing(f, staging / f.name) for f in files}
        market = _read_staged(staging, files)
        with transaction.atomic():
            dataset = _dataset_row(name=name, market=market, checksum=_checksum(digests, single=single))
            # The primary key makes the name unique on disk; dataset names alone can slugify alike.
            stem = f"{dataset.pk}-{slugify(name) or 'dataset'}"
            placed = data_dir / (f"{stem}.csv" if single else stem)
            os.replace(staging / files[0].name if single else staging, placed)
            dataset.path = str(placed)
            dataset.save(update_fields=["path"])
    except BaseException:
        # The row was rolled back; the file must not outlive it.
        if placed is not None and placed.is_dir():
            shutil.rmtree(placed, ignore_errors=True)
        elif placed is not None:
            placed.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dataset


def _csv_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if source.is_dir():
        files = sorted(p for p in source.glob("*.csv") if p.is_file())
        if not files:
            raise ValidationError({"path": DATASET_FOLDER_EMPTY.format(path=source)})
        return files
    raise ValidationError({"path": DATASET_PATH_MISSING.format(path=source)})


def _copy_hashing(source: Path, target: Path) -> str:
    digest = hashlib.sha256()
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(_COPY_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
    return digest.hexdigest()


def _checksum(digests: dict[str, str], *, single: bool) -> str:
    if single:
        return next(iter(digests.values()))
    listing = "".join(f"{digest}  {name}\n" for name, digest in sorted(digests.items()))
    return hashlib.sha256(listing.encode()).hexdigest()


def _read_staged(staging: Path, originals: list[Path]) -> MarketData:
    try:
        return read_csv([staging / f.name for f in originals])
    except DataError as error:
        # Report the user's file, not the staged copy (same name, so the message reads the same).
        by_name = {f.name: f for f in originals}
        file = by_name.get(Path(error.file).name, error.file) if error.file else None
        raise DataError(error.problem, file=file, line=error.line, column=error.column) from None


def _dataset_row(*, name: str, market: MarketData, checksum: str) -> Dataset:
    dataset = Dataset(
        name=name,
        frequency=market.frequency,
        periods_per_year=market.periods_per_year,
        tickers=list(market.tickers),
        start_date=np.datetime64(market.dates[0], "D").item(),
        end_date=np.datetime64(market.dates[-1], "D").item(),
        checksum=checksum,
        n_bars=len(market),
    )
    # The path is only known once the row has its primary key.
    dataset.full_clean(exclude=["path"])
    try:
        with transaction.atomic():
            dataset.save()
    except IntegrityError:
        # Another import took the name between the check above and this insert.
        raise Conflict(DATASET_NAME_TAKEN.format(name=name), field="name") from None
    return dataset


# ---------------------------------------------------------------------------------------- strategies

@transaction.atomic
def strategy_create(
    *,
    owner,
    name: str,
    description: str = "",
    task: str,
    agent: str,
    dataset: Dataset,
    params: Mapping[str, Any] | None = None,
    preset: str = "default",
) -> Strategy:
    """Create a strategy whose config is the engine's RunConfig for these inputs (see config_build).

    Raises Conflict (the owner already has a strategy of that name), pydantic's ValidationError (the
    config, with field paths) or Django's ValidationError (the other fields).
    """
    _check_name_free(owner=owner, name=name)
    config = config_build(task=task, agent=agent, dataset=dataset, params=params or {}, preset=preset)
    strategy = Strategy(
        owner=owner,
        name=name,
        description=description,
        task=task,
        agent=agent,
        dataset=dataset,
        config=config.model_dump(mode="json"),
    )
    _save(strategy)
    return strategy


@transaction.atomic
def strategy_update(
    *,
    strategy: Strategy,
    user,
    name: str | None = None,
    description: str | None = None,
    task: str | None = None,
    agent: str | None = None,
    dataset: Dataset | None = None,
    params: Mapping[str, Any] | None = None,
    preset: str | None = None,
) -> Strategy:
    """Change what is given (None leaves a field as it is) and validate the config again.

    params are merged over the stored config, section by section. A new task or agent, or a preset,
    starts the config over from the engine's defaults (with the preset, then params, on top): the old
    env and agent parameters belong to the old pair.

    Raises NotFound when `user` may not see the strategy, PermissionDenied when they may see but not
    change it, and the errors of strategy_create.
    """
    _require_editor(strategy=strategy, user=user)
    if name is not None and name != strategy.name:
        _check_name_free(owner=strategy.owner, name=name)

    new_task, new_agent = task or strategy.task, agent or strategy.agent
    new_dataset = dataset or strategy.dataset
    restart = preset is not None or (new_task, new_agent) != (strategy.task, strategy.agent)
    if restart or params is not None or new_dataset.pk != strategy.dataset_id:
        base = {} if restart else config_sections(strategy.config)
        config = config_build(
            task=new_task,
            agent=new_agent,
            dataset=new_dataset,
            params=deep_merge(base, params or {}),
            preset=preset or "default",
        )
        strategy.config = config.model_dump(mode="json")

    strategy.task, strategy.agent, strategy.dataset = new_task, new_agent, new_dataset
    if name is not None:
        strategy.name = name
    if description is not None:
        strategy.description = description
    _save(strategy)
    return strategy


@transaction.atomic
def strategy_delete(*, strategy: Strategy, user) -> None:
    """Delete the strategy and, by cascade, its sessions and their results."""
    _require_editor(strategy=strategy, user=user)
    strategy.delete()


def _require_editor(*, strategy: Strategy, user) -> None:
    """Owners and superusers may change a strategy. Staff see every strategy but change only their
    own (403); anyone else is told it does not exist (404), as strategy_get does."""
    if strategy.owner_id == user.pk or user.is_superuser:
        return
    if sees_all_strategies(user):
        raise PermissionDenied(STRATEGY_NOT_YOURS.format(pk=strategy.pk, owner=strategy.owner))
    raise NotFound(STRATEGY_NOT_FOUND.format(pk=strategy.pk))


def _check_name_free(*, owner, name: str) -> None:
    if Strategy.objects.filter(owner=owner, name=name).exists():
        raise Conflict(STRATEGY_NAME_TAKEN.format(name=name), field="name")


def _save(strategy: Strategy) -> None:
    # validate_constraints would report a taken name as a generic ValidationError; it is checked above
    # as a Conflict, and the IntegrityError below catches the race.
    strategy.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            strategy.save()
    except IntegrityError:
        raise Conflict(STRATEGY_NAME_TAKEN.format(name=strategy.name), field="name") from None
