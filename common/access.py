"""Who may see and who may act on what a user owns: a strategy, and with it its sessions.

- Owners and superusers see and act.
- Staff (operators) see every user's sessions, to run the platform: their status, progress, resources,
  logs and reports. They act only on their own (403 on someone else's session), and they do not see
  other users' strategies, whose configs are their owners' work.
- Anyone else neither sees nor acts: someone else's object is "not found" (404), so ids do not reveal
  what exists.
"""
from django.core.exceptions import PermissionDenied

from common.errors import NotFound


def sees_everything(user) -> bool:
    """Whether `user` sees every user's sessions (staff and superusers), not only their own."""
    return bool(user.is_staff or user.is_superuser)


def sees_all_strategies(user) -> bool:
    """Whether `user` sees every user's strategies and their configs: superusers only."""
    return bool(user.is_superuser)


def sees_strategy(user, owner_id: int) -> bool:
    """Whether `user` sees a strategy of `owner_id` (a link to its page leads somewhere): its owner and
    superusers; staff who see someone's session do not see that strategy."""
    return owner_id == user.pk or sees_all_strategies(user)


def may_act(*, user, owner_id: int) -> bool:
    return owner_id == user.pk or bool(user.is_superuser)


def require_actor(*, user, owner_id: int, not_found: str, not_yours: str, sees: bool | None = None) -> None:
    """Return if `user` may act on what `owner_id` owns; else PermissionDenied(`not_yours`) when they
    may see it, NotFound(`not_found`) when they may not. `sees`: whether they see it (default: the
    sessions' rule, sees_everything)."""
    if may_act(user=user, owner_id=owner_id):
        return
    if sees_everything(user) if sees is None else sees:
        raise PermissionDenied(not_yours)
    raise NotFound(not_found)
