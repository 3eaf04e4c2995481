"""manage.py backtest --config finds a dataset by the name it was imported under, as train does."""
import io
import json

import pytest
from django.core.management import call_command

from strategies.services import dataset_import
from tests.platform.session_helpers import tiny_config_file

pytestmark = pytest.mark.django_db


def test_backtest_of_a_config_reads_an_imported_dataset_by_its_name(tmp_path, btc_csv):
    dataset = dataset_import(path=btc_csv, name="btc")
    config = tiny_config_file(tmp_path / "hold.json", task="algorithmic_trading", agent="buy_and_hold",
                              dataset="btc", env={"window": 5}, agent_params={},
                              split={"ratios": [0.5, 0.25, 0.25]})
    out = io.StringIO()

    call_command("backtest", "--config", str(config), "--json", stdout=out, stderr=io.StringIO())

    report = json.loads(out.getvalue())
    assert report["task"] == "algorithmic_trading" and report["tickers"] == dataset.tickers
    assert len(report["equity_curve"]) > 1
