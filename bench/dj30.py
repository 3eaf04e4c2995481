"""DJ30 results of the default configs: train 2012-2019, model selection on 2020 only, test on 2021.

    python bench/dj30.py [--data ../shared/data/dj30] [--agents ppo eiie] [--seeds 0 1 2]

Each agent runs with its default config for portfolio management (nothing tuned on 2021); the best
epoch is picked by the valid (2020) Sharpe ratio; the printed 2021 figures are that checkpoint's
backtest next to equal-weight buy-and-hold over the same bars.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import RunConfig  # noqa: E402
from engine.data import read_csv  # noqa: E402
from engine.training.trainer import Trainer  # noqa: E402

SPLIT = {"train": ["2012-01-01", "2019-12-31"], "valid": ["2020-01-01", "2020-12-31"],
         "test": ["2021-01-01", "2021-12-31"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "dj30"))
    parser.add_argument("--agents", nargs="+", default=["ppo", "eiie"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    args = parser.parse_args()
    market = read_csv(sorted(Path(args.data).glob("*.csv")), name="dj30")
    print(f"{'agent':<8}{'seed':>5}{'best ep':>8}{'valid sharpe':>13}{'test return':>13}{'test sharpe':>12}"
          f"{'max dd':>9}{'B&H return':>12}{'B&H sharpe':>11}{'minutes':>9}", flush=True)
    for agent in args.agents:
        for seed in args.seeds:
            config = RunConfig.model_validate({"task": "portfolio_management", "dataset": args.data,
                                               "agent": agent, "split": SPLIT, "trainer": {"seed": seed}})
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as run_dir:
                trainer = Trainer(config, run_dir=run_dir, market=market)
                result = trainer.fit()
                report = trainer.backtest()
            m, b = report["metrics"], report["benchmark_metrics"]
            print(f"{agent:<8}{seed:>5}{result.best_epoch:>8}{result.best_value:>13.3f}{m['total_return']:>13.2%}"
                  f"{m['sharpe']:>12.3f}{m['max_drawdown']:>9.2%}{b['total_return']:>12.2%}{b['sharpe']:>11.3f}"
                  f"{(time.perf_counter() - started) / 60:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
