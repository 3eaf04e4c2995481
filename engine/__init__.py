"""TradeMaster Web's trading core: market data, gymnasium environments, torch agents, trainer,
backtests and metrics. Pure Python: it never imports Django.

Importing the package registers the environments with gymnasium, so
`gymnasium.make("TradeMaster/PortfolioManagement-v0")` works (on the synthetic market when no data
is passed).
"""
from engine.envs.registration import register_envs

__version__ = "0.1.0"

register_envs()
