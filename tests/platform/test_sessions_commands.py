"""manage.py train and manage.py backtest."""
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django_q.models import OrmQ

from sessions.management.commands import train
from sessions.management.run_configs import WHICH_USER
from sessions.models import SessionStatus as S
from sessions.models import StrategySession
from strategies.models import Dataset, Strategy
from tests.platform.session_helpers import tiny_config_file

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_train_inline_trains_each_config_here_with_a_progress_bar(tmp_path, runs_dir, superuser):
    first = tiny_config_file(tmp_path / "first.json")
    second = tiny_config_file(tmp_path / "second.json", epochs=1)

    out, err = run("train", str(first), str(second), "--inline")

    sessions = list(StrategySession.objects.order_by("pk"))
    assert [(s.strategy.name, s.status, s.progress_epoch) for s in sessions] == [
        ("first", S.COMPLETED, 2), ("second", S.COMPLETED, 1),
    ]
    assert all(s.strategy.owner == superuser and s.metrics.exists() for s in sessions)
    assert f"session {sessions[0].pk} completed" in out and "sharpe" in out
    assert "2/2" in err and "epoch" in err  # tqdm's bar
    assert not OrmQ.objects.exists()  # nothing was queued for the workers
    # The built-in market is registered once, under its engine name.
    assert list(Dataset.objects.values_list("name", "path")) == [("synthetic", "synthetic")]
    assert sessions[0].config["dataset"] == "synthetic"


def test_train_queues_for_the_workers_without_inline(tmp_path, superuser, django_capture_on_commit_callbacks):
    config = tiny_config_file(tmp_path / "queued.json")

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run("train", str(config))

    session = StrategySession.objects.get()
    assert session.status == S.QUEUED and OrmQ.objects.count() == 1
    assert f"session {session.pk} queued" in out


def test_train_imports_a_csv_dataset_once_and_names_strategies_apart(tmp_path, runs_dir, btc_csv, user):
    config = {"task": "algorithmic_trading", "agent": "dqn", "dataset": str(btc_csv),
              "env": {"window": 5}, "trainer": {"epochs": 1, "steps_per_epoch": 64, "num_envs": 2}}
    path = tmp_path / "btc.json"
    path.write_text(json.dumps(config))

    run("train", str(path), "--user", "ada", "--inline")
    run("train", str(path), "--user", "ada", "--inline")

    dataset = Dataset.objects.get()
    assert dataset.name == "btc_daily" and dataset.n_bars == 120
    assert sorted(Strategy.objects.values_list("name", flat=True)) == ["btc", "btc (2)"]
    assert set(StrategySession.objects.values_list("status", flat=True)) == {S.COMPLETED}
    assert StrategySession.objects.first().config["dataset"] == dataset.path


def test_a_bad_config_names_the_field_and_creates_nothing(tmp_path, superuser):
    good = tiny_config_file(tmp_path / "good.json")
    bad = tiny_config_file(tmp_path / "bad.json", env={"window": 0})

    with pytest.raises(CommandError) as raised:
        run("train", str(good), str(bad), "--inline")

    assert "bad.json: invalid config" in str(raised.value) and "env.window" in str(raised.value)
    assert not Strategy.objects.exists()


def test_an_unknown_dataset_is_named(tmp_path, superuser):
    config = tiny_config_file(tmp_path / "nowhere.json", dataset="no-such-market")

    with pytest.raises(CommandError, match=r"nowhere.json: dataset: 'no-such-market' is neither"):
        run("train", str(config))


def test_train_needs_a_user_when_there_is_no_single_superuser(tmp_path, user):
    with pytest.raises(CommandError) as raised:
        run("train", str(tiny_config_file(tmp_path / "c.json")))

    assert str(raised.value) == WHICH_USER.format(found="no superuser")


def test_a_bad_config_exits_non_zero_from_the_shell(tmp_path):
    bad = tiny_config_file(tmp_path / "bad.json", trainer={"epochs": 0})

    finished = subprocess.run(
        [sys.executable, "manage.py", "train", str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert finished.returncode != 0
    assert "trainer.epochs" in finished.stderr


def test_backtest_of_a_session_prints_the_engines_json_report(tmp_path, runs_dir, superuser):
    run("train", str(tiny_config_file(tmp_path / "trained.json")), "--inline")
    session = StrategySession.objects.get()

    out, _ = run("backtest", "--session", str(session.pk), "--json")

    report = json.loads(out)
    assert set(report["metrics"]) >= {"sharpe", "total_return", "max_drawdown"}
    assert set(report["benchmark_metrics"]) >= {"sharpe", "total_return"}
    assert report["metrics"] == session.result_data["report"]["metrics"]  # its best checkpoint again
    table, _ = run("backtest", "--session", str(session.pk))
    assert table.splitlines()[0].split() == ["metric", "strategy", "buy_and_hold"]


def test_backtest_of_a_config_runs_its_agent_as_it_starts(tmp_path):
    config = tiny_config_file(tmp_path / "twap.json", task="order_execution", agent="twap", env={},
                              agent_params={})

    out, err = run("backtest", "--config", str(config), "--json")

    assert "twap is backtested as it starts" in err
    assert json.loads(out)["task"] == "order_execution"


def test_backtest_refuses_a_session_without_checkpoint(tmp_path, runs_dir, superuser):
    run("train", str(tiny_config_file(tmp_path / "queued.json")))
    session = StrategySession.objects.get()

    with pytest.raises(CommandError, match=f"session {session.pk} has no checkpoint"):
        run("backtest", "--session", str(session.pk))
    with pytest.raises(CommandError, match="no session 999"):
        run("backtest", "--session", "999")


def test_ctrl_c_during_an_inline_training_leaves_it_paused_at_its_checkpoint(tmp_path, runs_dir, superuser,
                                                                              monkeypatch):
    def interrupted(self, ctx):
        raise KeyboardInterrupt  # the user's Ctrl-C, arriving at the end of epoch 1

    monkeypatch.setattr(train.ProgressBar, "on_epoch_end", interrupted)

    with pytest.raises(CommandError, match="paused at its last checkpoint"):
        run("train", str(tiny_config_file(tmp_path / "long.json", epochs=5)), "--inline")

    session = StrategySession.objects.get()
    assert (session.status, session.error) == (S.PAUSED, train.INTERRUPTED)
    assert (runs_dir / str(session.pk) / "last.pt").is_file()
