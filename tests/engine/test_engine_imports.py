"""The engine is usable without Django: importing every module of it loads no django module."""
import json
import subprocess
import sys


def imported_after(code: str) -> list[str]:
    """The top-level names of the modules in sys.modules after `code` runs in a fresh interpreter."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def test_importing_every_engine_module_loads_no_django_module():
    code = (
        "import importlib, pkgutil, engine\n"
        "names = [m.name for m in pkgutil.walk_packages(engine.__path__, 'engine.')]\n"
        "for name in names: importlib.import_module(name)\n"
    )
    loaded = imported_after(code)
    assert "torch" in loaded  # the walk reached the agents and the envs
    assert "django" not in loaded


def test_the_task_table_and_the_config_load_no_torch():
    loaded = imported_after("import engine.tasks, engine.config, engine.envs, engine.data.catalog")
    assert "torch" not in loaded


def test_importing_engine_registers_the_three_gymnasium_ids():
    import gymnasium

    import engine  # noqa: F401

    for env_id in ("TradeMaster/PortfolioManagement-v0", "TradeMaster/AlgorithmicTrading-v0",
                   "TradeMaster/OrderExecution-v0"):
        assert env_id in gymnasium.registry
