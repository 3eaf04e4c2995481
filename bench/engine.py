"""Engine benchmark: environment and training throughput against Stable-Baselines3, in one run.

    python bench/engine.py [--data ../shared/data/dj30] [--repeats N] [--budget STEPS] [--threads T] [--quick]

Every setup is built and warmed up untimed, then all of them are timed in interleaved rounds
(bench/timing.py says why) and each is printed as the median and the min-max range over the rounds:
- env-steps/s of the single portfolio env and of its batched torch twin at B = 1, 64, 1024 on DJ30
  (29 assets, window 10, 11 features);
- PPO training env-steps/s of this engine at the trainer's defaults (TrainerConfig's num_envs, the
  task's episode length, PPO's default parameters) against Stable-Baselines3's PPO on the same env with the
  same network sizes (64x64 tanh MLPs for policy and value), once with the same update work per sample
  and once at SB3's defaults;
- the two ratios, taken round by round; the machine, its load, and the peak RSS of the process.
Targets on a 2-core CPU: >= 250,000 batched env-steps/s at B=1024; PPO >= 10x SB3 at its defaults.
At the defaults about 5 minutes on 2 cores; --quick is a smoke run of about a minute.
"""
from __future__ import annotations

import argparse
import inspect
import itertools
import platform
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.timing import (  # noqa: E402
    Run,
    Setup,
    Spread,
    busy_machine,
    cpu_model,
    load_average,
    peak_rss_mb,
    per_round_ratios,
    run_rounds,
)
from common.machine import usable_cores  # noqa: E402
from engine.agents.ppo import PPO  # noqa: E402
from engine.config import DEFAULTS, TrainerConfig  # noqa: E402
from engine.data import read_csv  # noqa: E402
from engine.envs.portfolio import PortfolioManagementEnv  # noqa: E402
from engine.envs.portfolio_batched import BatchedPortfolioManagementEnv  # noqa: E402

WINDOW = 10
# What the trainer runs for PPO on this task: its episode length and batch width (num_envs).
EPISODE_LENGTH = DEFAULTS[("portfolio_management", "ppo")]["env"]["episode_length"]
TRAINER = TrainerConfig()
ENGINE_PPO = PPO.Params(hidden=(64, 64))
# SB3 with the engine's update work per sample: its minibatch and passes, on SB3's default rollout of
# 2,048 samples (8 envs x 256 steps).
SB3_MATCHED_ENVS = 8
SB3_MATCHED = {"n_steps": 2048 // SB3_MATCHED_ENVS, "batch_size": ENGINE_PPO.minibatch_size,
               "n_epochs": ENGINE_PPO.update_epochs}
BATCH_WIDTHS = {1: 2_000, 64: 1_000, 1024: 300}  # B -> batched steps per round (x B env-steps)
SINGLE_STEPS = 10_000
# Env-steps per PPO setup per round: whole rollout-and-update cycles of every setup (4 of the engine's
# 4,096-sample rollouts at B=64, 8 of SB3's 2,048), and half a trainer epoch, so that five rounds of SB3
# at its defaults, the slowest setup by 10-50x, take a few minutes on two quiet cores.
PPO_BUDGET = 16_384
QUICK_PPO_BUDGET = 4_096

TARGETS = {"batched env B=1024": "(target >= 250,000)", "each at its defaults": "(target >= 10x)"}
LABEL_WIDTH = 62


# -- setups: each builds its objects, warms up untimed and returns one round's timed run --------------

def single_env(market, steps: int) -> Run:
    env = PortfolioManagementEnv(market, window=WINDOW)
    actions = np.random.default_rng(0).normal(size=(steps, env.action_space.shape[0])).astype(np.float32)
    env.reset(seed=0)

    def run() -> int:
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        return steps

    run()  # warm-up
    return run


def batched_env(market, num_envs: int, steps: int) -> Run:
    env = BatchedPortfolioManagementEnv(market, num_envs=num_envs, device="cpu", window=WINDOW,
                                        episode_length=EPISODE_LENGTH)
    gen = torch.Generator().manual_seed(0)
    actions = torch.randn(16, num_envs, env.single_action_space.shape[0], generator=gen)
    env.reset(seed=0)

    def run() -> int:
        for k in range(steps):
            env.step(actions[k % 16])
        return steps * num_envs

    run()  # warm-up
    return run


def engine_ppo(market, num_envs: int, budget: int) -> Run:
    env = BatchedPortfolioManagementEnv(market, num_envs=num_envs, device="cpu", window=WINDOW,
                                        episode_length=EPISODE_LENGTH)
    agent = PPO(env, ENGINE_PPO, device="cpu", seed=0)
    agent.learn_epoch(env, num_envs * ENGINE_PPO.n_steps, seed=1)  # warm-up: one rollout and update
    seeds = itertools.count(2)

    def run() -> int:
        return int(agent.learn_epoch(env, budget, seed=next(seeds))["time/env_steps"])

    return run


def sb3_ppo(market, num_envs: int, budget: int, **kwargs) -> Run:
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env

    vec = make_vec_env(lambda: PortfolioManagementEnv(market, window=WINDOW, episode_length=EPISODE_LENGTH),
                       n_envs=num_envs, seed=0)
    model = SB3PPO("MlpPolicy", vec, device="cpu", seed=0, verbose=0,
                   policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}}, **kwargs)
    model.learn(total_timesteps=model.n_steps * num_envs)  # warm-up: one rollout and update, as the engine's

    def run() -> int:
        model.learn(total_timesteps=budget)  # counts from 0 again: num_timesteps is this call's steps
        return model.num_timesteps

    return run


def sb3_defaults() -> dict[str, float]:
    from stable_baselines3 import PPO as SB3PPO

    parameters = inspect.signature(SB3PPO.__init__).parameters
    return {name: parameters[name].default for name in ("n_steps", "batch_size", "n_epochs")}


# -- the run --------------------------------------------------------------------------------------------

def setups(market, *, budget: int, scale: float) -> dict[str, list[Setup]]:
    """The setups by section, labelled as printed."""
    envs = [Setup("single env (gymnasium, numpy)", partial(single_env, market, int(SINGLE_STEPS * scale)))]
    for b, steps in BATCH_WIDTHS.items():
        envs.append(Setup(f"batched env B={b}", partial(batched_env, market, b, int(steps * scale))))
    m = SB3_MATCHED
    training = [
        Setup(f"this engine, trainer defaults (B={TRAINER.num_envs}, {ENGINE_PPO.update_epochs} passes, "
              f"minibatch {ENGINE_PPO.minibatch_size})", partial(engine_ppo, market, TRAINER.num_envs, budget)),
        Setup(f"SB3, same update work ({SB3_MATCHED_ENVS} envs, {m['n_epochs']} passes, minibatch {m['batch_size']})",
              partial(sb3_ppo, market, SB3_MATCHED_ENVS, budget, **m)),
        Setup("SB3 at its defaults (1 env, as FinRL trains it)", partial(sb3_ppo, market, 1, budget)),
    ]
    return {"environment": envs, "training": training}


def row(label: str, spread: Spread, fmt: str, unit: str = "") -> str:
    median, lo, hi = (format(x, fmt) + unit for x in (spread.median, spread.low, spread.high))
    target = f"   {TARGETS[label]}" if label in TARGETS else ""
    return f"  {label:<{LABEL_WIDTH}} {median:>9}   [{lo:>9} - {hi:>9}]  {spread.relative_range:6.1%}{target}"


def print_header(market, args) -> None:
    print(f"machine: {cpu_model()}, {usable_cores()} usable cores; load average {load_average()} at start")
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} thread{'s' if threads > 1 else ''}; numpy {np.__version__}; "
          f"Python {platform.python_version()}")
    print(f"market: {market.name} {len(market)} bars x {market.n_assets} assets x {market.n_features} features, "
          f"window {WINDOW}, episodes of {EPISODE_LENGTH} bars")
    print(f"protocol: every setup warmed up untimed, then {args.repeats} interleaved rounds (each setup once "
          f"per round, rotating order); PPO: {args.budget:,} env-steps per setup per round")
    if busy_machine() and torch.get_num_threads() > 1:
        print(f"warning: the machine is busy (load average above {usable_cores()} cores); torch's "
              f"{torch.get_num_threads()} threads per op then wait on each other, which slows torch far more than "
              "numpy: the figures measure that contention (--threads 1 measures the libraries)")
    print(f"{'':<{LABEL_WIDTH + 2}} {'median':>9}   [{'min':>9} - {'max':>9}]  {'range':>6}", flush=True)


def print_rates(title: str, section: list[Setup], rates: dict[str, list[float]]) -> None:
    print(f"{title} (env-steps/s)")
    for setup in section:
        print(row(setup.name, Spread.of(rates[setup.name]), ",.0f"))


def print_ratios(training: list[Setup], rates: dict[str, list[float]]) -> None:
    ours, matched, default = (rates[s.name] for s in training)
    print("PPO ratios, this engine / SB3, taken per round")
    print(row("same update work per sample", Spread.of(per_round_ratios(ours, matched)), ".2f", "x"))
    print(row("each at its defaults", Spread.of(per_round_ratios(ours, default)), ".2f", "x"))
    sb3 = sb3_defaults()
    print(f"  (the defaults differ in update work: SB3's make one gradient step per "
          f"{sb3['batch_size'] / sb3['n_epochs']:g} samples (minibatch {sb3['batch_size']}, {sb3['n_epochs']} "
          f"passes), the engine's one per {ENGINE_PPO.minibatch_size / ENGINE_PPO.update_epochs:g} "
          f"(minibatch {ENGINE_PPO.minibatch_size}, {ENGINE_PPO.update_epochs} passes))")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "dj30"))
    parser.add_argument("--repeats", type=int, help="timed rounds (default 5; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="small budgets and 2 rounds: a smoke run")
    parser.add_argument("--budget", type=int, help=f"env-steps per PPO setup per round (default {PPO_BUDGET:,}; "
                        f"{QUICK_PPO_BUDGET:,} with --quick)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own, as the trainer runs)")
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.budget is None:
        args.budget = QUICK_PPO_BUDGET if args.quick else PPO_BUDGET
    if args.repeats < 1 or args.budget < 1:
        parser.error("--repeats and --budget must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = Path(args.data)
    market = read_csv(sorted(data.glob("*.csv")) if data.is_dir() else [data], name=data.stem)
    sections = setups(market, budget=args.budget, scale=0.25 if args.quick else 1.0)
    print_header(market, args)
    started = time.perf_counter()
    rates = run_rounds([s for section in sections.values() for s in section], args.repeats,
                       log=lambda line: print(f"  ... {line}", file=sys.stderr, flush=True))
    print_rates("environment", sections["environment"], rates)
    print_rates("PPO training", sections["training"], rates)
    print_ratios(sections["training"], rates)
    print(f"peak RSS {peak_rss_mb():,.0f} MB; load average {load_average()} at the end; "
          f"{time.perf_counter() - started:,.0f} s from the first warm-up")


if __name__ == "__main__":
    main()
