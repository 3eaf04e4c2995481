"""Command line: train and backtest a run config without the platform.

    python -m engine train CONFIG.json [--run-dir DIR] [--resume]
    python -m engine backtest CONFIG.json --run-dir DIR

Prints one line per epoch and, at the end, the test-split report's metrics against its benchmark.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from engine.training.callbacks import Callback


def _load_config(path: str):
    from engine.config import RunConfig

    try:
        return RunConfig.model_validate_json(Path(path).read_text())
    except ValidationError as exc:
        lines = [f"{path}: invalid config"] + [
            f"  {'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()
        ]
        raise SystemExit("\n".join(lines)) from None


class _EpochPrinter(Callback):
    KEYS = ("train/reward", "train/loss", "eval/total_return", "eval/sharpe", "eval/shortfall_bps",
            "time/steps_per_s")

    def on_train_start(self, info):
        print(f"training on {info.device}: epochs {info.start_epoch}..{info.epochs}", flush=True)

    def on_epoch_end(self, ctx):
        shown = "  ".join(f"{k}={ctx.metrics[k]:.4g}" for k in self.KEYS if k in ctx.metrics)
        print(f"epoch {ctx.epoch}/{ctx.epochs}  {shown}{'  *best' if ctx.is_best else ''}", flush=True)

    def on_train_end(self, result):
        print(f"{result.status} after {result.epochs_done} epochs; best epoch {result.best_epoch}", flush=True)


def _summary(report: dict) -> str:
    keys = ("total_return", "annual_return", "sharpe", "max_drawdown", "shortfall_bps", "orders")
    rows = [f"{'metric':<16}{'strategy':>14}{report['benchmark']:>16}"]
    for key in keys:
        if key in report["metrics"]:
            a, b = report["metrics"][key], report["benchmark_metrics"].get(key)
            fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
            rows.append(f"{key:<16}{fmt(a):>14}{fmt(b):>16}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from engine.training.trainer import Trainer

    parser = argparse.ArgumentParser(prog="python -m engine")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a config, then backtest its best checkpoint on the test split")
    train.add_argument("config")
    train.add_argument("--run-dir", default=None, help="where checkpoints go (default runs/<config name>)")
    train.add_argument("--resume", action="store_true")
    train.add_argument("--json", action="store_true", help="print the full report as JSON")
    backtest = sub.add_parser("backtest", help="backtest the best checkpoint of a trained run")
    backtest.add_argument("config")
    backtest.add_argument("--run-dir", required=True)
    backtest.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    config = _load_config(args.config)
    run_dir = Path(args.run_dir or Path("runs") / Path(args.config).stem)
    trainer = Trainer(config, run_dir=run_dir, callbacks=[_EpochPrinter()] if args.command == "train" else [])
    if args.command == "train":
        trainer.fit(resume=args.resume)
    report = trainer.backtest()
    print(json.dumps(report, indent=2) if args.json else _summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
