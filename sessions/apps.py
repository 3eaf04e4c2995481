from django.apps import AppConfig


class TrainingSessionsConfig(AppConfig):
    name = "sessions"
    # django.contrib.sessions owns the label "sessions" (login sessions); this app's tables and
    # migrations live under this label instead.
    label = "training_sessions"
    verbose_name = "Strategy sessions"
