"""Engine benchmark: environment and training throughput against Stable-Baselines3, in one run.

    python bench/engine.py [--data ../shared/data/dj30] [--quick]

Prints
- env-steps/s of the single portfolio env and of its batched torch twin at B = 1, 64, 1024 on DJ30
  (29 assets, window 10, 11 features);
- PPO training env-steps/s of this engine against Stable-Baselines3's PPO on the same env and the same
  network sizes (64x64 tanh MLPs for policy and value), each at its defaults and at the same update
  work per sample, and the ratios;
- peak RSS of the process.
Targets on a 2-core CPU: >= 250,000 batched env-steps/s at B=1024; PPO >= 10x SB3.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.agents.ppo import PPO  # noqa: E402
from engine.data import read_csv  # noqa: E402
from engine.envs.portfolio import PortfolioManagementEnv  # noqa: E402
from engine.envs.portfolio_batched import BatchedPortfolioManagementEnv  # noqa: E402

WINDOW = 10


def single_env_steps_per_s(market, steps: int) -> float:
    env = PortfolioManagementEnv(market, window=WINDOW)
    rng = np.random.default_rng(0)
    actions = rng.normal(size=(steps, env.action_space.shape[0])).astype(np.float32)
    env.reset(seed=0)
    started = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - started)


def batched_env_steps_per_s(market, num_envs: int, steps: int) -> float:
    env = BatchedPortfolioManagementEnv(market, num_envs=num_envs, device="cpu", window=WINDOW, episode_length=256)
    gen = torch.Generator().manual_seed(0)
    actions = torch.randn(16, num_envs, env.single_action_space.shape[0], generator=gen)
    env.reset(seed=0)
    for k in range(5):  # warm-up
        env.step(actions[k % 16])
    started = time.perf_counter()
    for k in range(steps):
        env.step(actions[k % 16])
    return steps * num_envs / (time.perf_counter() - started)


def ours_ppo_steps_per_s(market, budget: int, num_envs: int, **params) -> float:
    env = BatchedPortfolioManagementEnv(market, num_envs=num_envs, device="cpu", window=WINDOW, episode_length=256)
    agent = PPO(env, PPO.Params(hidden=(64, 64), **params), device="cpu", seed=0)
    agent.learn_epoch(env, num_envs * agent.params.n_steps, seed=1)  # warm-up: first-call allocations
    started = time.perf_counter()
    metrics = agent.learn_epoch(env, budget, seed=2)
    return metrics["time/env_steps"] / (time.perf_counter() - started)


def sb3_ppo_steps_per_s(market, budget: int, num_envs: int, **kwargs) -> float:
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env

    vec = make_vec_env(lambda: PortfolioManagementEnv(market, window=WINDOW, episode_length=256),
                       n_envs=num_envs, seed=0)
    model = SB3PPO("MlpPolicy", vec, device="cpu", seed=0, verbose=0,
                   policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}}, **kwargs)
    started = time.perf_counter()
    model.learn(total_timesteps=budget)
    return model.num_timesteps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "dj30"))
    parser.add_argument("--quick", action="store_true", help="smaller budgets, for a smoke run")
    args = parser.parse_args()
    torch.set_num_threads(2)

    data = Path(args.data)
    files = sorted(data.glob("*.csv")) if data.is_dir() else [data]
    market = read_csv(files, name="dj30")
    print(f"market: {market.name} {len(market)} bars x {market.n_assets} assets x {market.n_features} features, "
          f"window {WINDOW}, torch {torch.__version__}, {torch.get_num_threads()} threads")

    single = single_env_steps_per_s(market, 2_000 if args.quick else 10_000)
    print(f"single env (gymnasium, numpy):        {single:>12,.0f} env-steps/s")
    for b, steps in ((1, 2_000), (64, 1_000), (1024, 300)):
        rate = batched_env_steps_per_s(market, b, steps // (4 if args.quick else 1))
        print(f"batched env B={b:<5}                   {rate:>12,.0f} env-steps/s"
              f"{'   (target >= 250,000)' if b == 1024 else ''}")

    # Same env, same 64x64 tanh actor and critic, same step budget. Two comparisons:
    # 1. each library as shipped: SB3's PPO defaults on one env in a DummyVecEnv, as FinRL trains it
    #    (2048-step rollouts, minibatch 64, 10 passes), against this engine's PPO defaults on its
    #    batched env at B=256 (64-step rollouts per env, minibatch 1024, 4 passes);
    # 2. the same update work per sample: SB3 with 8 envs, 4 passes, minibatch 1024.
    budget = 8_192 if args.quick else 32_768
    ours = ours_ppo_steps_per_s(market, budget, num_envs=256)
    sb3_default = sb3_ppo_steps_per_s(market, budget, num_envs=1)
    sb3_matched = sb3_ppo_steps_per_s(market, budget, num_envs=8, n_steps=256, batch_size=1024, n_epochs=4)
    print(f"budget {budget:,} env-steps each")
    print(f"PPO training, this engine (defaults, B=256):        {ours:>10,.0f} env-steps/s")
    print(f"PPO training, SB3 defaults (1 env, as FinRL):      {sb3_default:>10,.0f} env-steps/s"
          f"   ratio {ours / sb3_default:5.1f}x (target >= 10x)")
    print(f"PPO training, SB3 same update work (8 envs):       {sb3_matched:>10,.0f} env-steps/s"
          f"   ratio {ours / sb3_matched:5.1f}x")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS:                             {peak_mb:>12,.0f} MB")


if __name__ == "__main__":
    main()
