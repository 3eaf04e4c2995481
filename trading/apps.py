from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = "Trading"

    def ready(self) -> None:
        from django.db.models.signals import pre_delete

        from strategies.models import Strategy

        # A strategy's deletion is refused while one of its deployments trades (it would delete the
        # record of what traded under a running process), and removes the deployments' checkpoint copies.
        pre_delete.connect(before_strategy_delete, sender=Strategy, dispatch_uid="trading.strategy_delete")


def before_strategy_delete(sender, instance, **kwargs) -> None:
    from trading.services.deployments import strategy_deployments_before_delete

    strategy_deployments_before_delete(strategy=instance)
