"""Settings of the `manage.py qcluster` the cluster tests start (test_sessions_cluster.py): the
project's, on the test database (DATABASE_URL), with the runs in the test's folder and every clock
of the heartbeat and the watchdog in seconds, so that real processes finish in a test's time."""
import os
from pathlib import Path

from trademaster_web.settings import *  # noqa: F401,F403
from trademaster_web.settings import Q_CLUSTER, TRADEMASTER

TRADEMASTER = {
    **TRADEMASTER,
    "RUNS_DIR": Path(os.environ["TRADEMASTER_TEST_RUNS_DIR"]),
    "MAX_SESSIONS_PER_USER": 10,
    "HEARTBEAT_SECONDS": 1,
    "RESOURCE_SAMPLE_SECONDS": 1,
    "HEARTBEAT_TIMEOUT_SECONDS": 30,
    "WATCHDOG_SECONDS": 1,
}
Q_CLUSTER = {**Q_CLUSTER, "workers": 2, "poll": 0.1}
