"""The demo that ships with the product: real S&P 500 prices from the `arch` package, the engine's
synthetic market, and what `manage.py seed_demo` creates from them (see seed.py and markets.py)."""
from strategies.demo_data.markets import DemoDataUnavailable
from strategies.demo_data.seed import DATASETS, ROLES, STRATEGIES, SeedResult, demo_seed

__all__ = ["DATASETS", "ROLES", "STRATEGIES", "DemoDataUnavailable", "SeedResult", "demo_seed"]
