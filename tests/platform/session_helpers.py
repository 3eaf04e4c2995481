"""Helpers of the session tests: tiny configs and running a session in this process (their fixtures
are in conftest.py)."""
import json
from pathlib import Path

from sessions import runner, services
from sessions.models import StrategySession

PM = "portfolio_management"
# A training of about a second: the engine's own tiny test config (tests/engine/test_trainer.py).
TINY = {
    "env": {"window": 5, "episode_length": 32},
    "agent_params": {"n_steps": 16, "hidden": [16, 16], "update_epochs": 2},
    "trainer": {"epochs": 3, "steps_per_epoch": 512, "num_envs": 8, "seed": 3, "device": "cpu"},
}


def tiny(epochs: int = 3) -> dict:
    return {**TINY, "trainer": {**TINY["trainer"], "epochs": epochs}}


def tiny_config_file(path: Path, *, epochs: int = 2, **overrides) -> Path:
    """A run config file as `manage.py train` reads it."""
    path.write_text(json.dumps({"task": PM, "dataset": "synthetic", "agent": "ppo", **tiny(epochs), **overrides}))
    return path


def run_here(session: StrategySession, **kwargs) -> StrategySession:
    """What a worker does with its slot, in this process: start `session` and run it to its end."""
    started = services.session_start(session=session, process_id=4242, host="test-host")
    return runner.execute(started, **kwargs)
