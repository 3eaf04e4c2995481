"""The agents, by registry name. Each class says which tasks it supports (`tasks`) and holds its
hyperparameters as a dataclass (`Params`): the run config validates against these."""
from engine.agents.a2c import A2C
from engine.agents.base import Agent
from engine.agents.baselines import CRP, TWAP, BuyAndHold, RandomAgent
from engine.agents.dqn import DQN
from engine.agents.eiie import EIIE
from engine.agents.ppo import PPO
from engine.agents.sac import SAC

AGENTS: dict[str, type[Agent]] = {
    cls.name: cls for cls in (PPO, A2C, DQN, SAC, EIIE, BuyAndHold, CRP, RandomAgent, TWAP)
}


def agents_for(task: str) -> list[str]:
    return [name for name, cls in AGENTS.items() if task in cls.tasks]


__all__ = ["AGENTS", "Agent", "agents_for", "A2C", "CRP", "DQN", "EIIE", "PPO", "SAC", "TWAP", "BuyAndHold",
           "RandomAgent"]
