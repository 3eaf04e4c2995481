"""The JSON API of strategies, datasets and their config. Mounted by trademaster_web.api; errors are
turned into its one error shape there (common.errors)."""
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from ninja import File, Form, Router, Status, UploadedFile
from ninja.pagination import paginate

from common.errors import NotFound
from common.schemas import ERRORS
from strategies import selectors, services
from strategies.config import config_schema
from strategies.schemas import (
    AgentName,
    ConfigSchemaOut,
    DatasetImportIn,
    DatasetOut,
    StrategyIn,
    StrategyOut,
    StrategyPatch,
    TaskName,
)

IMPORT_NEEDS_STAFF = "only staff can import datasets: they are shared by every user"

strategies_router = Router(tags=["strategies"])
datasets_router = Router(tags=["datasets"])
config_router = Router(tags=["config"])


def _dataset(pk: int):
    # A dataset id in the body that does not exist is bad input (422 on that field), not a missing page.
    try:
        return selectors.dataset_get(pk=pk)
    except NotFound as error:
        raise ValidationError({"dataset": str(error)}) from None


@strategies_router.get("", response={200: list[StrategyOut], **ERRORS})
@paginate
def list_strategies(request: HttpRequest):
    """Your strategies, most recently changed first (superusers: everyone's)."""
    return selectors.strategy_list(user=request.auth)


@strategies_router.post("", response={201: StrategyOut, **ERRORS})
def create_strategy(request: HttpRequest, payload: StrategyIn):
    """Create a strategy; its config is validated by the engine (422 with field paths when invalid)."""
    values = payload.dict()
    dataset = _dataset(values.pop("dataset"))
    return Status(201, services.strategy_create(owner=request.auth, dataset=dataset, **values))


@strategies_router.get("/{strategy_id}", response={200: StrategyOut, **ERRORS})
def get_strategy(request: HttpRequest, strategy_id: int):
    return selectors.strategy_get(user=request.auth, pk=strategy_id)


@strategies_router.patch("/{strategy_id}", response={200: StrategyOut, **ERRORS})
def update_strategy(request: HttpRequest, strategy_id: int, payload: StrategyPatch):
    strategy = selectors.strategy_get(user=request.auth, pk=strategy_id)
    changes = payload.dict(exclude_unset=True)
    if changes.get("dataset") is not None:
        changes["dataset"] = _dataset(changes["dataset"])
    return services.strategy_update(strategy=strategy, user=request.auth, **changes)


@strategies_router.delete("/{strategy_id}", response={204: None, **ERRORS})
def delete_strategy(request: HttpRequest, strategy_id: int):
    strategy = selectors.strategy_get(user=request.auth, pk=strategy_id)
    services.strategy_delete(strategy=strategy, user=request.auth)
    return Status(204, None)


@datasets_router.get("", response={200: list[DatasetOut], **ERRORS})
@paginate
def list_datasets(request: HttpRequest):
    """Every imported dataset: datasets are shared by all users."""
    return selectors.dataset_list()


@datasets_router.post("/import", response={201: DatasetOut, **ERRORS})
def import_dataset(request: HttpRequest, payload: DatasetImportIn):
    """Import a CSV file (or a folder of CSV files) from the server's import folder
    (TRADEMASTER_IMPORT_DIR), by its path inside it; any other path is refused (422 on `path`). Staff
    only. The file is validated by the engine's reader (422 `invalid_data` naming file, line and
    column) and copied into the platform's data folder."""
    _require_staff(request)
    return Status(201, services.dataset_import_from_folder(path=payload.path, name=payload.name))


# Twisted, under daphne, parses a multipart body before the application sees it, and answers one it
# cannot parse with an empty 400 itself.
MULTIPART_UNPARSABLE = {400: None}


@datasets_router.post("/upload", response={201: DatasetOut, **ERRORS, **MULTIPART_UNPARSABLE})
def upload_dataset(request: HttpRequest, name: Form[str], files: File[list[UploadedFile]]):
    """Upload CSV files as a dataset (multipart/form-data: `name`, and one or more `files`; several
    files are read together, as train, valid and test). Staff only: datasets are shared by every user.
    Validated as an import is (422 `invalid_data` naming file, line and column). A multipart body the
    web server cannot parse is answered 400, without a body, before the API sees it."""
    _require_staff(request)
    return Status(201, services.dataset_upload(files=files, name=name))


def _require_staff(request: HttpRequest) -> None:
    if not (request.auth.is_staff or request.auth.is_superuser):
        raise PermissionDenied(IMPORT_NEEDS_STAFF)


@config_router.get("/schema", response={200: ConfigSchemaOut, **ERRORS})
def get_config_schema(request: HttpRequest, task: TaskName, agent: AgentName):
    """The fields of each config section for a (task, agent) pair, with that pair's defaults, and
    the presets: what a strategy form is built from."""
    return config_schema(task=task, agent=agent)
