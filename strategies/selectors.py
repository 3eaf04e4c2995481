from django.db.models import QuerySet

from common.access import sees_all_strategies
from common.errors import NotFound
from common.ids import is_id
from strategies.models import Dataset, Strategy

STRATEGY_NOT_FOUND = "no strategy {pk}"
DATASET_NOT_FOUND = "no dataset {pk}"


def strategy_list(*, user) -> QuerySet[Strategy]:
    """The strategies `user` may see, most recently changed first."""
    strategies = Strategy.objects.select_related("owner", "dataset")
    if sees_all_strategies(user):
        return strategies.all()
    return strategies.filter(owner=user)


# What the dashboard shows of a strategy (templates/dashboard.html).
PANEL_FIELDS = ("id", "name", "task", "agent", "updated_at", "dataset__name")


def strategy_panel(*, user) -> QuerySet[Strategy]:
    """strategy_list with PANEL_FIELDS only: no config, no owner."""
    strategies = Strategy.objects.select_related("dataset").only(*PANEL_FIELDS)
    return strategies if sees_all_strategies(user) else strategies.filter(owner=user)


def strategy_get(*, user, pk: int) -> Strategy:
    """One strategy `user` may see; NotFound for a missing one and for someone else's alike."""
    try:
        if not is_id(pk):
            raise Strategy.DoesNotExist
        return strategy_list(user=user).get(pk=pk)
    except Strategy.DoesNotExist:
        raise NotFound(STRATEGY_NOT_FOUND.format(pk=pk)) from None


def dataset_list() -> QuerySet[Dataset]:
    """Every imported dataset, by name: datasets are shared by all users."""
    return Dataset.objects.all()


def dataset_named(name: str) -> Dataset | None:
    """The dataset imported under `name`, if any."""
    return Dataset.objects.filter(name=name).first()


def dataset_get(*, pk: int) -> Dataset:
    try:
        if not is_id(pk):
            raise Dataset.DoesNotExist
        return Dataset.objects.get(pk=pk)
    except Dataset.DoesNotExist:
        raise NotFound(DATASET_NOT_FOUND.format(pk=pk)) from None
