"""Strategies: created and changed only here, their config always the engine's RunConfig."""
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from common.access import require_actor, sees_all_strategies
from common.errors import Conflict
from strategies.config import config_build, config_check_runnable, config_sections, deep_merge
from strategies.models import Dataset, Strategy
from strategies.selectors import STRATEGY_NOT_FOUND

STRATEGY_NAME_TAKEN = "you already have a strategy named {name!r}"
STRATEGY_NOT_YOURS = "strategy {pk} belongs to {owner}; only its owner or a superuser can change it"



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
    config_check_runnable(config, dataset)
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
        config_check_runnable(config, new_dataset)
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
    require_actor(user=user, owner_id=strategy.owner_id, sees=sees_all_strategies(user),
                  not_found=STRATEGY_NOT_FOUND.format(pk=strategy.pk),
                  not_yours=STRATEGY_NOT_YOURS.format(pk=strategy.pk, owner=strategy.owner))


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
