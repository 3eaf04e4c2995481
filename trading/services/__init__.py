"""The trading app's services: deployments (create, pause, resume, stop), their status machine, and
exchange accounts. The trading process itself lives in trading/process.py."""
from trading.services.deployments import (
    deployment_create,
    deployment_pause,
    deployment_resume,
    deployment_stop,
    exchange_account_create,
    exchange_account_get,
)
from trading.services.transitions import (
    DeploymentTransitionConflict,
    IllegalDeploymentTransition,
    deployment_transition,
)

__all__ = [
    "DeploymentTransitionConflict", "IllegalDeploymentTransition", "deployment_create", "deployment_pause",
    "deployment_resume", "deployment_stop", "deployment_transition", "exchange_account_create",
    "exchange_account_get",
]
