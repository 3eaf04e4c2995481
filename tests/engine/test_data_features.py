"""price_features against TradeMaster's own feature columns in dj30, and a hand-checked table."""
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.features import price_features, trailing_mean

TEST_CSV = Path("/work/shared/data/dj30/test.csv")


def test_price_features_match_the_dj30_files_own_columns():
    frame = pd.read_csv(TEST_CSV)
    panel = {k: frame.pivot(index="date", columns="tic", values=k).to_numpy()
             for k in ("open", "high", "low", "close", "adjcp")}
    names, ours = price_features(panel)
    assert names == ("zopen", "zhigh", "zlow", "zadjcp", "zclose", "zd_5", "zd_10", "zd_15", "zd_20", "zd_25", "zd_30")
    for i, name in enumerate(names):
        theirs = frame.pivot(index="date", columns="tic", values=name).to_numpy()
        # The file's first rows were computed with history from before its first date, which we lack.
        first = 0 if name in ("zopen", "zhigh", "zlow", "zadjcp") else (1 if name == "zclose" else 30)
        np.testing.assert_allclose(ours[first:, :, i], theirs[first:], atol=1e-5, err_msg=name)


def test_price_features_small_table_by_hand():
    close = np.array([[10.0], [20.0], [15.0], [30.0], [25.0], [50.0]])
    names, f = price_features({"close": close})
    assert names == ("zclose", "zd_5", "zd_10", "zd_15", "zd_20", "zd_25", "zd_30")
    np.testing.assert_allclose(f[:, 0, 0], [0, 1, -0.25, 1, -1 / 6, 1], rtol=1e-6)
    # zd_5: mean of the last (up to) 5 closes / close - 1.
    expected = [0, 15 / 20 - 1, 15 / 15 - 1, 18.75 / 30 - 1, 20 / 25 - 1, 28 / 50 - 1]
    np.testing.assert_allclose(f[:, 0, 1], expected, rtol=1e-6, atol=1e-7)


def test_trailing_mean_uses_the_available_bars_before_a_full_window():
    np.testing.assert_allclose(trailing_mean(np.array([1.0, 2, 3, 4, 5]), 3), [1, 1.5, 2, 3, 4])
    np.testing.assert_allclose(trailing_mean(np.array([1.0, 2]), 5), [1, 1.5])
