from django.apps import AppConfig


class TrainingSessionsConfig(AppConfig):
    name = "sessions"
    # django.contrib.sessions owns the label "sessions" (login sessions); this app's tables and
    # migrations live under this label instead.
    label = "training_sessions"
    verbose_name = "Strategy sessions"

    def ready(self) -> None:
        from django.db.models.signals import pre_delete
        from django_q.signals import post_spawn

        from sessions.monitor import start_watchdog
        from strategies.models import Strategy

        # Every worker process of `manage.py qcluster` runs the session watchdog (sessions.monitor).
        post_spawn.connect(start_watchdog, dispatch_uid="sessions.watchdog")
        # A strategy's deletion is refused while its sessions run, and removes their run directories:
        # a signal, because strategies must not import sessions (sessions builds on strategies).
        pre_delete.connect(before_strategy_delete, sender=Strategy, dispatch_uid="sessions.strategy_delete")


def before_strategy_delete(sender, instance, **kwargs) -> None:
    from sessions.services.actions import strategy_sessions_before_delete

    strategy_sessions_before_delete(strategy=instance)
