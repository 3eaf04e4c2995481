import datetime
import json
import shutil
from pathlib import Path

import pytest

from accounts.services import api_token_create
from sessions.models import SessionStatus as S
from sessions.models import StrategySession
from sessions.services import session_transition
from strategies.models import Dataset, Strategy
from strategies.services import strategy_create
from tests.platform.session_helpers import PM, tiny

BTC_DAILY = Path("/work/shared/data/btc/btc_daily.csv")

# How to reach each status through legal moves only: tests use the one transition function too.
PATH_TO = {
    S.PENDING: [],
    S.QUEUED: [S.QUEUED],
    S.RUNNING: [S.QUEUED, S.RUNNING],
    S.PAUSED: [S.QUEUED, S.RUNNING, S.PAUSED],
    S.COMPLETED: [S.QUEUED, S.RUNNING, S.COMPLETED],
    S.FAILED: [S.QUEUED, S.FAILED],
    S.CANCELLED: [S.CANCELLED],
}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The production hasher is slow on purpose (~0.3 s a password); the tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    # Imported datasets are copied into DATA_DIR: keep the tests' copies out of var/data.
    directory = tmp_path / "data_dir"
    settings.TRADEMASTER = {**settings.TRADEMASTER, "DATA_DIR": directory}
    return directory


@pytest.fixture
def btc_csv(tmp_path) -> Path:
    """The first 120 days of the real BTC file: real data, read in milliseconds."""
    # The shared market data sits beside the repository in every checkout and in CI; without it the
    # suite must fail loudly, not pass with the real-data tests quietly left out.
    assert BTC_DAILY.exists(), f"the tests need the shared market data at {BTC_DAILY}"
    path = tmp_path / "source" / "btc_daily.csv"
    path.parent.mkdir()
    with BTC_DAILY.open() as full, path.open("w") as part:
        for _, line in zip(range(121), full):  # header + 120 rows
            part.write(line)
    return path


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="ada", password="correct horse battery staple")


@pytest.fixture
def dataset(db):
    return Dataset.objects.create(
        name="synthetic-daily",
        frequency="1d",
        periods_per_year=252.0,
        tickers=["AAA", "BBB"],
        start_date=datetime.date(2020, 1, 1),
        end_date=datetime.date(2021, 12, 31),
        # The engine's built-in market: strategies on it are checked against real data when saved.
        path="synthetic",
        checksum="0" * 64,
        n_bars=504,
    )


@pytest.fixture
def strategy(user, dataset):
    return Strategy.objects.create(
        owner=user,
        name="ppo on synthetic",
        task=Strategy.Task.PORTFOLIO_MANAGEMENT,
        agent="ppo",
        dataset=dataset,
        config={"task": "portfolio_management", "dataset": "synthetic", "agent": "ppo"},
    )


@pytest.fixture
def make_session(strategy):
    def make(status: str = S.PENDING, **fields) -> StrategySession:
        session = StrategySession.objects.create(
            strategy=strategy, session_type=StrategySession.SessionType.TRAINING, **fields
        )
        for step in PATH_TO[status]:
            session_transition(session=session, to=step)
        return session

    return make


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="linus", password="correct horse battery staple")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        username="grace", password="correct horse battery staple", is_staff=True
    )


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(username="root", password="correct horse battery staple")


@pytest.fixture
def bearer():
    """bearer(user) -> the headers of an API request authenticated by a new token of `user`."""

    def make(user) -> dict:
        _, plaintext = api_token_create(user=user, name="tests")
        return {"Authorization": f"Bearer {plaintext}"}

    return make


# The session tests' --------------------------------------------------------------------------------

@pytest.fixture
def runs_dir(settings, tmp_path) -> Path:
    """RUNS_DIR in tmp_path. The heartbeat thread stays quiet in-process: on SQLite's in-memory test
    database a second connection would see neither the test's uncommitted rows nor its locks."""
    directory = tmp_path / "runs"
    settings.TRADEMASTER = {
        **settings.TRADEMASTER, "RUNS_DIR": directory, "HEARTBEAT_SECONDS": 3600, "RESOURCE_SAMPLE_SECONDS": 3600,
    }
    return directory


@pytest.fixture
def builtin_dataset(db) -> Dataset:
    """The engine's built-in "synthetic" market as a Dataset: its path is the engine's name for it."""
    return Dataset.objects.create(
        name="synthetic", frequency="1d", periods_per_year=252.0, tickers=["A0", "A1", "A2", "A3", "A4"],
        start_date=datetime.date(2000, 1, 3), end_date=datetime.date(2005, 10, 1), path="synthetic",
        checksum="1" * 64, n_bars=1500,
    )


@pytest.fixture
def make_strategy(builtin_dataset):
    def make(owner, name: str = "tiny", epochs: int = 3) -> Strategy:
        return strategy_create(owner=owner, name=name, task=PM, agent="ppo", dataset=builtin_dataset,
                               params=tiny(epochs))

    return make


@pytest.fixture
def tiny_strategy(user, make_strategy) -> Strategy:
    return make_strategy(user)


@pytest.fixture
def fast_poll(settings):
    """Live streams that read the database every 10 ms: a test waits for a message, not a tick."""
    settings.TRADEMASTER = {**settings.TRADEMASTER, "STREAM_POLL_SECONDS": 0.01, "STREAM_STATUS_POLL_SECONDS": 0.01}


@pytest.fixture
def deployments_dir(settings, tmp_path) -> Path:
    """DEPLOYMENTS_DIR in tmp_path, and a trading loop that looks for work at once (no idle wait)."""
    directory = tmp_path / "deployments"
    settings.TRADEMASTER = {**settings.TRADEMASTER, "DEPLOYMENTS_DIR": directory, "TRADE_IDLE_SECONDS": 0.0}
    return directory


# The training behind trained_session, once per config for the whole run: its run directory and the
# result it ended with. A training takes seconds and dozens of tests deploy one; each test still gets
# its own completed session row, whose run directory holds a copy of the same checkpoint.
_TRAINED: dict[str, tuple[Path, dict]] = {}


@pytest.fixture
def trained_session(user, make_strategy, runs_dir, deployments_dir, tmp_path_factory):
    """A completed one-epoch training session of a tiny portfolio strategy, with its best checkpoint."""
    from sessions.selectors import session_run_dir
    from sessions.services import session_start, session_submit
    from tests.platform.session_helpers import run_here

    session = session_submit(strategy=make_strategy(user, epochs=1), user=user, enqueue=False)
    key = json.dumps(session.config, sort_keys=True)
    if key not in _TRAINED:
        done = run_here(session)
        assert done.status == "completed", done.error
        kept = tmp_path_factory.mktemp("trained") / "run"
        shutil.copytree(session_run_dir(session=done), kept)
        _TRAINED[key] = (kept, done.result_data)
        return done
    kept, result = _TRAINED[key]
    shutil.copytree(kept, session_run_dir(session=session))
    started = session_start(session=session, process_id=4242, host="test-host")
    return session_transition(session=started, to=S.COMPLETED, result_data=result, progress_epoch=1,
                              progress_total=1)
