"""Settings of the `manage.py trade` processes the trading-process tests start: the project's, on the
test database (DATABASE_URL), with the deployments in the test's folder and a loop that beats and
looks for work often, so that real processes finish in a test's time. The lease stays long: a process
killed with kill -9 is taken over because its pid is gone on this host, not because a clock ran out."""
import os
from pathlib import Path

from trademaster_web.settings import *  # noqa: F401,F403
from trademaster_web.settings import TRADEMASTER

TRADEMASTER = {
    **TRADEMASTER,
    "RUNS_DIR": Path(os.environ["TRADEMASTER_TEST_RUNS_DIR"]),
    "DEPLOYMENTS_DIR": Path(os.environ["TRADEMASTER_TEST_DEPLOYMENTS_DIR"]),
    "TRADE_HEARTBEAT_SECONDS": 0.2,
    "TRADE_IDLE_SECONDS": 0.05,
}
