"""Gymnasium ids for the three TradeMaster tasks."""
from __future__ import annotations

import gymnasium as gym

ENV_IDS = {
    "portfolio_management": "TradeMaster/PortfolioManagement-v0",
    "algorithmic_trading": "TradeMaster/AlgorithmicTrading-v0",
    "order_execution": "TradeMaster/OrderExecution-v0",
}

_ENTRY_POINTS = {
    "portfolio_management": "engine.envs.portfolio:PortfolioManagementEnv",
    "algorithmic_trading": "engine.envs.trading:AlgorithmicTradingEnv",
    "order_execution": "engine.envs.execution:OrderExecutionEnv",
}


def register_envs() -> None:
    for task, env_id in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=_ENTRY_POINTS[task])
