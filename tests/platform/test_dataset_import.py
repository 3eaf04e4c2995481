import datetime
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from common.errors import Conflict
from engine.data import DataError
from strategies.models import Dataset
from strategies.services import DATASET_NAME_TAKEN, DATASET_PATH_MISSING, dataset_import

pytestmark = pytest.mark.django_db


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def corrupt(path: Path, *, row: int, close: str) -> Path:
    """A copy of `path` whose data row `row` (1-based; the header is line 1) has `close` as its close."""
    lines = path.read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    cells = lines[row].rstrip("\n").split(",")
    cells[header.index("close")] = close
    lines[row] = ",".join(cells) + "\n"
    bad = path.with_name("btc_bad.csv")
    bad.write_text("".join(lines))
    return bad


def files_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


def test_dataset_import_reads_the_file_with_the_engine_and_keeps_a_copy(btc_csv, data_dir):
    dataset = dataset_import(path=btc_csv, name="btc daily")

    dataset.refresh_from_db()
    assert (dataset.name, dataset.tickers, dataset.n_bars) == ("btc daily", ["BTC"], 120)
    assert (dataset.frequency, dataset.periods_per_year) == ("daily", 365.0)
    assert (dataset.start_date, dataset.end_date) == (datetime.date(2013, 4, 29), datetime.date(2013, 8, 26))
    assert dataset.checksum == sha256(btc_csv)
    copy = Path(dataset.path)
    assert copy.parent == data_dir and copy.read_bytes() == btc_csv.read_bytes()
    assert files_in(data_dir) == [copy]  # no staging left behind


def test_the_dataset_does_not_depend_on_where_it_was_imported_from(btc_csv):
    dataset = dataset_import(path=btc_csv, name="btc")

    btc_csv.unlink()

    assert Path(dataset.path).exists() and sha256(Path(dataset.path)) == dataset.checksum


def test_a_folder_of_csv_files_is_one_dataset(btc_csv, tmp_path, data_dir):
    lines = btc_csv.read_text().splitlines(keepends=True)
    folder = tmp_path / "btc_split"
    folder.mkdir()
    (folder / "a_train.csv").write_text("".join(lines[:81]))
    (folder / "b_test.csv").write_text("".join(lines[:1] + lines[81:]))

    dataset = dataset_import(path=folder, name="btc split")

    assert dataset.n_bars == 120
    assert Path(dataset.path).is_dir() and sorted(p.name for p in Path(dataset.path).iterdir()) == [
        "a_train.csv", "b_test.csv"
    ]
    listing = "".join(f"{sha256(folder / n)}  {n}\n" for n in ("a_train.csv", "b_test.csv"))
    assert dataset.checksum == hashlib.sha256(listing.encode()).hexdigest()


def test_a_bad_file_raises_the_engines_error_and_saves_nothing(btc_csv, data_dir):
    bad = corrupt(btc_csv, row=10, close="-3.5")

    with pytest.raises(DataError) as raised:
        dataset_import(path=bad, name="btc")

    assert str(raised.value).startswith("btc_bad.csv line 11, column 'close': ")
    assert raised.value.file == str(bad)  # the user's file, not the staged copy
    assert not Dataset.objects.exists()
    assert files_in(data_dir) == []


def test_a_taken_name_is_refused_before_anything_is_copied(btc_csv, data_dir):
    first = dataset_import(path=btc_csv, name="btc")

    with pytest.raises(Conflict, match=DATASET_NAME_TAKEN.format(name="btc")):
        dataset_import(path=btc_csv, name="btc")

    assert list(Dataset.objects.all()) == [first]
    assert files_in(data_dir) == [Path(first.path)]


def test_a_missing_path_is_a_validation_error_on_path(tmp_path):
    missing = tmp_path / "nope.csv"

    with pytest.raises(ValidationError) as raised:
        dataset_import(path=missing, name="nope")

    assert raised.value.message_dict == {"path": [DATASET_PATH_MISSING.format(path=missing)]}


def test_import_prices_imports_a_real_file(btc_csv, capsys):
    call_command("import_prices", str(btc_csv), "--name", "btc")

    dataset = Dataset.objects.get(name="btc")
    assert dataset.n_bars == 120
    assert "Imported 'btc': 120 bars (daily) of BTC" in capsys.readouterr().out


def test_import_prices_exits_non_zero_naming_line_and_column_and_saves_nothing(btc_csv, data_dir):
    bad = corrupt(btc_csv, row=5, close="abc")

    # manage.py prints a CommandError and exits with its returncode. (Not run through manage.py here:
    # that closes the database connection, which the test's transaction still needs.)
    with pytest.raises(CommandError) as raised:
        call_command("import_prices", str(bad), "--name", "btc")

    assert raised.value.returncode != 0
    assert str(raised.value) == "btc_bad.csv line 6, column 'close': cannot parse 'abc' as a number"
    assert not Dataset.objects.exists()
    assert files_in(data_dir) == []


def test_import_prices_reports_a_taken_name(btc_csv):
    call_command("import_prices", str(btc_csv), "--name", "btc")

    with pytest.raises(CommandError, match=DATASET_NAME_TAKEN.format(name="btc")):
        call_command("import_prices", str(btc_csv), "--name", "btc")


# A process that stages an import and waits, as one killed mid-copy would have left it.
STAGE_AND_WAIT = """
import sys
import django
django.setup()
from pathlib import Path
from strategies.services.datasets import staging_area
with staging_area(Path(sys.argv[1])) as staging:
    (staging / "btc_daily.csv").write_text("date,close\\n")
    print(staging, flush=True)
    sys.stdin.read()
"""


def test_an_import_killed_mid_copy_leaves_no_staging_folder_behind(data_dir, btc_csv):
    root = Path(__file__).resolve().parents[2]
    importer = subprocess.Popen(
        [sys.executable, "-c", STAGE_AND_WAIT, str(data_dir)], cwd=root, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, env={**os.environ, "DJANGO_SETTINGS_MODULE": "trademaster_web.settings"},
    )
    try:
        staged = Path(importer.stdout.readline().strip())
        assert staged.is_dir()
        dataset_import(path=btc_csv, name="while it runs")
        assert staged.is_dir()  # a live import's folder is left alone
    finally:
        importer.kill()
        importer.wait()

    dataset_import(path=btc_csv, name="after it died")

    assert not list(data_dir.glob(".import-*"))
    kept = sorted(Path(dataset.path).name for dataset in Dataset.objects.all())
    assert len(kept) == 2 and sorted(p.name for p in data_dir.iterdir()) == kept
