"""Market data: the MarketData panel, CSV readers with validation, splits, frequency, features and a
synthetic market."""
from engine.data.errors import DataError
from engine.data.features import price_features
from engine.data.frequency import detect_frequency, periods_per_year
from engine.data.market import MarketData
from engine.data.readers import read_csv
from engine.data.splits import Splits, split_market
from engine.data.synthetic import synthetic_market

__all__ = [
    "DataError",
    "MarketData",
    "Splits",
    "detect_frequency",
    "periods_per_year",
    "price_features",
    "read_csv",
    "split_market",
    "synthetic_market",
]
