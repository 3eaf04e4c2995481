"""What users ask of deployments: create one from a completed training, pause, resume, stop; and
their exchange accounts.

A deployment keeps what it trades for good: the run config, a copy of the checkpoint with its sha256
(checked again before every load), the dataset and the period of a replay, the fill model and costs.
Pause, resume and stop are status moves the trading process reads before every bar.
"""
from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from common.access import require_actor
from common.errors import Conflict, NotFound
from engine.backtest.rollout import first_decision_bar
from engine.config import RunConfig
from engine.data.catalog import load_dataset
from engine.data.splits import split_market
from engine.tasks import TASK_SPECS
from sessions.models import SessionStatus, StrategySession
from sessions.selectors import BEST_CHECKPOINT, SESSION_NOT_FOUND, session_run_dir
from trading import credentials
from trading.models import Deployment, DeploymentStatus, ExchangeAccount
from trading.services.transitions import deployment_transition

# engine.live.policy.DEPLOYABLE_TASKS, repeated so that the web process need not import torch.
DEPLOYABLE_TASKS = ("portfolio_management", "algorithmic_trading")
NOT_TRAINING = "session {pk} is a {kind} session; a deployment trades a training session's best checkpoint"
NOT_COMPLETED = "session {pk} is {status}; only a completed training can be deployed"
NO_CHECKPOINT = "session {pk} has no best checkpoint to deploy"
NOT_DEPLOYABLE = "a {task} strategy cannot be deployed; deployable tasks: {tasks}"
SESSION_NOT_YOURS = "session {pk} belongs to {owner}; only its owner or a superuser can deploy it"
DEPLOYMENT_NOT_FOUND = "no deployment {pk}"
DEPLOYMENT_NOT_YOURS = "deployment {pk} belongs to {owner}; only its owner or a superuser can act on it"
LIVE_NEEDS_ACCOUNT = "live trading needs an exchange account (account)"
LIVE_NEEDS_LIVE_FEED = "live trading trades live bars: use feed 'live' (a replay is for paper only)"
LIVE_FEED_NEEDS_ACCOUNT = "a live feed reads bars from an exchange: name an exchange account (account)"
ACCOUNT_NOT_FOUND = "no exchange account {name!r} of yours"
NOT_POSITIVE = "must be a finite number > 0"
NOT_FRACTION = "must be a finite number in (0, 1]"
NOT_A_RATE = "must be a finite number in [0, 1)"
NOT_BPS = "must be a finite number in [0, 10000)"
NOTHING_TO_REPLAY = "the test period of session {pk}'s dataset is too short to replay"
SYMBOLS_MISMATCH = "give {n} distinct exchange symbols, one for each asset the strategy trades ({trained}), in order"
ACCOUNT_NOT_OWNERS = "exchange account {name!r} is not one of {owner}'s, whose strategy this is"
SYMBOLS_ONLY_LIVE = "symbols name a live feed's exchange symbols; a replay trades the dataset's own"
NAME_TAKEN = "you already have an exchange account named {name!r}"
STRATEGY_HAS_ACTIVE_DEPLOYMENTS = (
    "strategy {pk} has deployments that are not over ({ids}): stop them, then delete the strategy"
)
ALREADY_FINAL = "deployment {pk} is {status}: it has ended"
STOPPED_BY = "stopped by {user}"
PAUSED_BY = "paused by {user}"
RESUMED_BY = "resumed by {user}"


def deployment_create(*, session: StrategySession, user, mode: str = "paper", feed: str = "replay",
                      account: ExchangeAccount | None = None, fill_model: str = "close",
                      bars_per_second: float | None = None, slippage_bps: float = 0.0,
                      volume_cap: float | None = None, timeframe: str = "1m", name: str = "",
                      symbols: list[str] | None = None) -> Deployment:
    """A pending deployment of `session`'s best checkpoint, which a trading process then starts.

    symbols: a live feed's exchange symbols ("BTC/USDT"), one per asset the strategy was trained on, in
    the dataset's order (default: the dataset's tickers).
    ValidationError naming the field for what cannot be deployed; NotFound / PermissionDenied for a
    session the user may not deploy."""
    require_actor(user=user, owner_id=session.strategy.owner_id, not_found=SESSION_NOT_FOUND.format(pk=session.pk),
                  not_yours=SESSION_NOT_YOURS.format(pk=session.pk, owner=session.strategy.owner))
    checkpoint = _deployable(session)
    config = RunConfig.model_validate(session.config)
    _check_mode(mode=mode, feed=feed, account=account)
    if account is not None and account.owner_id != session.strategy.owner_id:
        # A superuser deploying someone's session must not trade it on an account of their own.
        raise ValidationError({"account": ACCOUNT_NOT_OWNERS.format(name=account.name, owner=session.strategy.owner)})
    if symbols is not None and feed != Deployment.FeedKind.LIVE:
        raise ValidationError({"symbols": SYMBOLS_ONLY_LIVE})
    _check_numbers(bars_per_second=bars_per_second, slippage_bps=slippage_bps, volume_cap=volume_cap)
    params = config.env_params()
    if feed == Deployment.FeedKind.REPLAY:
        symbols, replay = _traded(config, session)
    else:
        symbols, replay = _live_symbols(config, symbols), None
    with transaction.atomic():
        deployment = Deployment.objects.create(
            owner=session.strategy.owner, strategy=session.strategy, session=session, mode=mode, feed=feed,
            account=account, name=name or f"{session.strategy.name} #{session.pk}", config=session.config,
            dataset_name=session.strategy.dataset.name, symbols=list(symbols),
            replay_start=replay.start if replay else None, replay_stop=replay.stop if replay else None,
            bars_per_second=bars_per_second, timeframe=timeframe if feed == Deployment.FeedKind.LIVE else "",
            fill_model=fill_model, fee_rate=params.transaction_cost, slippage_bps=slippage_bps,
            volume_cap=volume_cap, initial_cash=params.initial_cash, checkpoint_path="", checkpoint_sha256="",
        )
        # Nothing half-saved: a copy that fails rolls the row back, and a row that fails removes the copy.
        try:
            path, digest = _copy_checkpoint(checkpoint, deployment)
            Deployment.objects.filter(pk=deployment.pk).update(checkpoint_path=str(path), checkpoint_sha256=digest)
        except BaseException:
            shutil.rmtree(deployment_dir(deployment), ignore_errors=True)
            raise
    deployment.refresh_from_db()
    return deployment


def _deployable(session: StrategySession) -> Path:
    if session.session_type != StrategySession.SessionType.TRAINING:
        raise ValidationError({"session": NOT_TRAINING.format(pk=session.pk, kind=session.session_type)})
    if session.status != SessionStatus.COMPLETED:
        raise ValidationError({"session": NOT_COMPLETED.format(pk=session.pk, status=session.status)})
    task = session.config.get("task")
    if task not in DEPLOYABLE_TASKS:
        raise ValidationError({"session": NOT_DEPLOYABLE.format(task=task, tasks=", ".join(DEPLOYABLE_TASKS))})
    best = session_run_dir(session=session) / BEST_CHECKPOINT
    if not best.is_file():
        raise ValidationError({"session": NO_CHECKPOINT.format(pk=session.pk)})
    return best


def _check_mode(*, mode: str, feed: str, account: ExchangeAccount | None) -> None:
    if mode == Deployment.Mode.LIVE and account is None:
        raise ValidationError({"account": LIVE_NEEDS_ACCOUNT})
    if mode == Deployment.Mode.LIVE and feed != Deployment.FeedKind.LIVE:
        raise ValidationError({"feed": LIVE_NEEDS_LIVE_FEED})
    if feed == Deployment.FeedKind.LIVE and account is None:
        raise ValidationError({"account": LIVE_FEED_NEEDS_ACCOUNT})


def _check_numbers(*, bars_per_second, slippage_bps, volume_cap) -> None:
    errors = {}
    if bars_per_second is not None and not (math.isfinite(bars_per_second) and bars_per_second > 0):
        errors["bars_per_second"] = NOT_POSITIVE
    if not (math.isfinite(slippage_bps) and 0 <= slippage_bps < 1e4):
        errors["slippage_bps"] = NOT_BPS
    if volume_cap is not None and not (math.isfinite(volume_cap) and 0 < volume_cap <= 1):
        errors["volume_cap"] = NOT_FRACTION
    if errors:
        raise ValidationError(errors)


def _traded(config: RunConfig, session: StrategySession) -> tuple[tuple[str, ...], range]:
    """The symbols a replay trades and its bars: the strategy's test period from its first decision bar,
    the bars its backtest report covers."""
    market = load_dataset(config.dataset, task=config.task)
    test = split_market(market, **config.split.as_kwargs()).test
    params = config.env_params()
    bars = range(first_decision_bar(test.start, params.window), test.stop)
    if len(bars) < 2:
        raise ValidationError({"session": NOTHING_TO_REPLAY.format(pk=session.pk)})
    return _symbols(config, market.tickers), bars


def _live_symbols(config: RunConfig, given: list[str] | None) -> tuple[str, ...]:
    market = load_dataset(config.dataset, task=config.task)
    trained = _symbols(config, market.tickers)
    if given is None:
        return trained
    if len(given) != len(trained) or len(set(given)) != len(given) or not all(isinstance(s, str) and s for s in given):
        raise ValidationError({"symbols": SYMBOLS_MISMATCH.format(n=len(trained), trained=", ".join(trained))})
    return tuple(given)


def _symbols(config: RunConfig, tickers) -> tuple[str, ...]:
    if TASK_SPECS[config.task].single_asset:
        ticker = getattr(config.env_params(), "ticker", None)
        return (ticker,) if ticker else tuple(tickers[:1])
    return tuple(tickers)


def _copy_checkpoint(source: Path, deployment: Deployment) -> tuple[Path, str]:
    """The deployment's own copy of the checkpoint (the training's run directory may be deleted) and
    its sha256."""
    folder = deployment_dir(deployment)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "policy.pt"
    shutil.copyfile(source, target)
    return target, file_sha256(target)


def deployment_dir(deployment: Deployment) -> Path:
    return Path(settings.TRADEMASTER["DEPLOYMENTS_DIR"]) / str(deployment.pk)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Actions ------------------------------------------------------------------------------------------

def deployment_for_actor(*, deployment: Deployment, user) -> None:
    require_actor(user=user, owner_id=deployment.owner_id, not_found=DEPLOYMENT_NOT_FOUND.format(pk=deployment.pk),
                  not_yours=DEPLOYMENT_NOT_YOURS.format(pk=deployment.pk, owner=deployment.owner))


def deployment_pause(*, deployment: Deployment, user) -> Deployment:
    """Running -> paused: the trading process places no order from the next bar on (open orders stay)."""
    deployment_for_actor(deployment=deployment, user=user)
    return deployment_transition(deployment=deployment, to=DeploymentStatus.PAUSED,
                                 error=PAUSED_BY.format(user=user.get_username()))


def deployment_resume(*, deployment: Deployment, user) -> Deployment:
    """Paused or halted -> running, from the next bar on (a halted one is reconciled again first)."""
    deployment_for_actor(deployment=deployment, user=user)
    return deployment_transition(deployment=deployment, to=DeploymentStatus.RUNNING,
                                 error=RESUMED_BY.format(user=user.get_username()))


def deployment_stop(*, deployment: Deployment, user) -> Deployment:
    """Any active status -> stopped, for good: the process lets it go before its next bar."""
    deployment_for_actor(deployment=deployment, user=user)
    if deployment.is_final:
        raise Conflict(ALREADY_FINAL.format(pk=deployment.pk, status=deployment.status))
    return deployment_transition(deployment=deployment, to=DeploymentStatus.STOPPED,
                                 error=STOPPED_BY.format(user=user.get_username()))


def strategy_deployments_before_delete(*, strategy) -> None:
    """Refuse (Conflict naming them) to delete `strategy` while any of its deployments is not over;
    otherwise remove their checkpoint copies once the deletion commits."""
    deployments = Deployment.objects.filter(strategy_id=strategy.pk)
    active = list(deployments.exclude(status__in=[DeploymentStatus.STOPPED, DeploymentStatus.FAILED])
                  .order_by("pk").values_list("pk", flat=True))
    if active:
        raise Conflict(STRATEGY_HAS_ACTIVE_DEPLOYMENTS.format(pk=strategy.pk, ids=", ".join(map(str, active))))
    folders = [deployment_dir(d) for d in deployments.only("pk")]
    if folders:
        transaction.on_commit(lambda: [shutil.rmtree(folder, ignore_errors=True) for folder in folders])


# Exchange accounts --------------------------------------------------------------------------------

def exchange_account_create(*, owner, name: str, exchange: str, api_key: str, secret: str, base_url: str = "",
                            quote: str = "USDT") -> ExchangeAccount:
    """Store `owner`'s keys at `exchange`, sealed (trading.credentials); the keys are not readable again
    through the product, only usable by the trading process."""
    if ExchangeAccount.objects.filter(owner=owner, name=name).exists():
        raise Conflict(NAME_TAKEN.format(name=name), field="name")
    account = ExchangeAccount(owner=owner, name=name, exchange=exchange, base_url=base_url, quote=quote,
                              api_key_sealed=credentials.seal(api_key), secret_sealed=credentials.seal(secret),
                              key_hint=credentials.hint(api_key))
    account.full_clean(exclude=["api_key_sealed", "secret_sealed", "key_hint"])
    account.save()
    return account


def exchange_account_get(*, owner, name: str) -> ExchangeAccount:
    try:
        return ExchangeAccount.objects.get(owner=owner, name=name)
    except ExchangeAccount.DoesNotExist:
        raise NotFound(ACCOUNT_NOT_FOUND.format(name=name)) from None
