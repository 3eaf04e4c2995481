from django.apps import AppConfig


class TrainingSessionsConfig(AppConfig):
    name = "sessions"
    # django.contrib.sessions owns the label "sessions" (login sessions); this app's tables and
    # migrations live under this label instead.
    label = "training_sessions"
    verbose_name = "Strategy sessions"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from sessions.monitor import start_watchdog

        # Every worker process of `manage.py qcluster` runs the session watchdog (sessions.monitor).
        post_spawn.connect(start_watchdog, dispatch_uid="sessions.watchdog")
