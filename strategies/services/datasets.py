"""Datasets: market-data files imported into the platform's data folder, validated by the engine."""
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from common.errors import Conflict
from engine.data import DataError, MarketData, read_csv
from strategies.models import Dataset

DATASET_NAME_TAKEN = "a dataset named {name!r} already exists"
DATASET_PATH_MISSING = "no such file or folder: {path}"
DATASET_FOLDER_EMPTY = "the folder {path} holds no .csv file"
OUTSIDE_IMPORT_DIR = (
    "must name a file or folder inside the import folder (TRADEMASTER_IMPORT_DIR): put the file there, "
    "or upload it"
)
UPLOAD_NOT_CSV = "{name!r} is not a .csv file"
UPLOAD_TOO_LARGE = "the files hold {size:,} bytes; an upload may hold {limit:,}"
UPLOAD_NONE = "upload at least one .csv file"
UPLOAD_SAME_NAME = "two files are named {name!r}"

_COPY_CHUNK = 1 << 20
STAGING_PREFIX = ".import-"



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
    with staging_area(data_dir) as staging:
        return _import_staged(files, staging=staging, data_dir=data_dir, name=name, single=single)


def dataset_import_from_folder(*, path: str, name: str) -> Dataset:
    """dataset_import of `path`, a file or folder inside TRADEMASTER["IMPORT_DIR"] (relative to it, or
    absolute): what the API may read of the server's files. Anything outside the folder is refused
    the same way whether or not it exists, so the answer reveals nothing about other files.
    """
    folder = Path(settings.TRADEMASTER["IMPORT_DIR"]).resolve()
    target = (folder / path).resolve()
    if not target.is_relative_to(folder):
        raise ValidationError({"path": OUTSIDE_IMPORT_DIR})
    if not target.exists():
        raise ValidationError({"path": DATASET_PATH_MISSING.format(path=path)})
    return dataset_import(path=target, name=name)


def dataset_upload(*, files: list, name: str) -> Dataset:
    """Import uploaded CSV files (Django UploadedFile): one is a file, several are read together as
    a folder is. Errors name the uploaded file by its name."""
    _check_upload(files)
    data_dir = Path(settings.TRADEMASTER["DATA_DIR"])
    with staging_area(data_dir) as received:
        for upload in files:
            with (received / Path(upload.name).name).open("wb") as target:
                for chunk in upload.chunks():
                    target.write(chunk)
        source = received / Path(files[0].name).name if len(files) == 1 else received
        try:
            return dataset_import(path=source, name=name)
        except DataError as error:
            file = Path(error.file).name if error.file else None
            raise DataError(error.problem, file=file, line=error.line, column=error.column) from None


def _check_upload(files: list) -> None:
    if not files:
        raise ValidationError({"files": UPLOAD_NONE})
    names = [Path(upload.name or "").name for upload in files]
    for file_name in names:
        if not file_name.lower().endswith(".csv"):
            raise ValidationError({"files": UPLOAD_NOT_CSV.format(name=file_name)})
        if names.count(file_name) > 1:
            raise ValidationError({"files": UPLOAD_SAME_NAME.format(name=file_name)})
    size, limit = sum(upload.size for upload in files), settings.TRADEMASTER["UPLOAD_MAX_BYTES"]
    if size > limit:
        raise ValidationError({"files": UPLOAD_TOO_LARGE.format(size=size, limit=limit)})


@contextmanager
def staging_area(data_dir: Path) -> Iterator[Path]:
    """A new folder to stage an import in, inside `data_dir` (so that moving into place is a rename on
    one file system), removed at the end.

    An import killed mid-copy (kill -9) leaves its folder behind. Every import holds a shared lock on
    `data_dir` itself (flock of the folder; the kernel drops it when the process dies) while it runs;
    one that can take the lock exclusively knows that no other import is alive, and removes every
    staging folder first: no clock decides what is stale.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = os.open(data_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # another import runs: its folder is alive
        else:
            for stale in data_dir.glob(f"{STAGING_PREFIX}*"):
                shutil.rmtree(stale, ignore_errors=True)
        fcntl.flock(lock, fcntl.LOCK_SH)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=data_dir))
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        os.close(lock)


def _import_staged(files: list[Path], *, staging: Path, data_dir: Path, name: str, single: bool) -> Dataset:
    # The copies are what is read, so what was validated is exactly what is kept, even if the source
    # changes meanwhile.
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


def dataset_checksum(path: Path) -> str:
    """The checksum dataset_import gives the file or folder at `path`, read as it is now."""
    if path.is_file():
        return _sha256(path)
    return _checksum({f.name: _sha256(f) for f in _csv_files(path)}, single=False)


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


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


