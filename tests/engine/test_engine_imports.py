"""The engine is usable without Django: importing all of it loads no django module."""
import subprocess
import sys

ENGINE_MODULES = [
    "engine",
    "engine.config",
    "engine.data",
    "engine.envs",
    "engine.agents",
    "engine.training",
    "engine.training.trainer",
    "engine.backtest.backtester",
    "engine.metrics",
]


def test_importing_the_engine_loads_no_django_module():
    code = (
        "import importlib, sys\n"
        f"for name in {ENGINE_MODULES!r}: importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print(len(loaded)); print(loaded[:5])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, sample = out.stdout.splitlines()
    assert count == "0", f"engine imported django modules: {sample}"


def test_importing_engine_registers_the_three_gymnasium_ids():
    import gymnasium

    import engine  # noqa: F401

    for env_id in ("TradeMaster/PortfolioManagement-v0", "TradeMaster/AlgorithmicTrading-v0",
                   "TradeMaster/OrderExecution-v0"):
        assert env_id in gymnasium.registry
