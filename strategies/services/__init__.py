"""The only code that writes datasets and strategies:

datasets    dataset_import: a CSV file or folder validated by the engine and copied into DATA_DIR
strategies  strategy_create, strategy_update, strategy_delete: the config is always the engine's RunConfig
configs     strategy_from_config: a run config file made into a strategy, as `manage.py train` takes it

Everything public is importable from here (`from strategies.services import strategy_create`).
"""
from strategies.services.configs import UNKNOWN_DATASET, dataset_for, strategy_from_config
from strategies.services.datasets import (
    DATASET_FOLDER_EMPTY,
    DATASET_NAME_TAKEN,
    DATASET_PATH_MISSING,
    OUTSIDE_IMPORT_DIR,
    UPLOAD_NOT_CSV,
    UPLOAD_TOO_LARGE,
    dataset_checksum,
    dataset_import,
    dataset_import_from_folder,
    dataset_upload,
)
from strategies.services.strategies import (
    STRATEGY_NAME_TAKEN,
    STRATEGY_NOT_YOURS,
    strategy_create,
    strategy_delete,
    strategy_update,
)
