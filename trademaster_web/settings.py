"""Settings of TradeMaster Web, read from the environment.

DJANGO_ENV            "production" turns DEBUG off by default and requires a real DJANGO_SECRET_KEY
DJANGO_SECRET_KEY     required in production; a demo key is used otherwise
DJANGO_DEBUG          1/0, true/false (default: on, except in production)
DJANGO_ALLOWED_HOSTS  comma-separated host names
DATABASE_URL          e.g. postgres://user:pass@host:5432/name; unset means SQLite in var/db.sqlite3
DATABASE_CONN_MAX_AGE seconds a PostgreSQL connection is kept (default 0: one per request, as ASGI needs)
DATABASE_POOL         1: keep connections in the process: a pool on PostgreSQL, one open connection per
                      thread on SQLite (trademaster_web.serve sets it for its daphne processes, whose
                      threads are a fixed pool; not for django-q2, whose workers are forked)
DJANGO_Q_WORKERS      django-q2 worker processes (default 2)
TRADEMASTER_MAX_RETRIES  automatic retries of a failed training (default 2)
TRADEMASTER_STREAM_POLL_SECONDS  how often a watched session's live stream reads new rows (default 0.05)
TRADEMASTER_TRAINING_THREADS  torch threads of each training (default: its share of the cores)
"""
import os
from collections.abc import Mapping
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

DEMO_SECRET_KEY = "django-insecure-trademaster-demo-key-never-use-in-production"
SECRET_KEY_REQUIRED = (
    "DJANGO_SECRET_KEY must be set to a secret value when DJANGO_ENV=production or DEBUG is off "
    "(the demo key is public). Generate one with: "
    "python -c 'from django.core.management.utils import get_random_secret_key as k; print(k())'"
)
INVALID_BOOLEAN = "{name}={value!r} is not a boolean; use 1/0, true/false, yes/no or on/off"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    if name not in environ:
        return default
    value = environ[name].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(INVALID_BOOLEAN.format(name=name, value=environ[name]))


def secret_key_from_env(environ: Mapping[str, str], *, production: bool) -> str:
    key = environ.get("DJANGO_SECRET_KEY", "").strip() or DEMO_SECRET_KEY
    if production and key == DEMO_SECRET_KEY:
        raise ImproperlyConfigured(SECRET_KEY_REQUIRED)
    return key


# Per process. A web process runs at most asgi.HTTP_THREADS requests at once, plus WebSocket consumers
# and stream tails; a caller waits up to `timeout` seconds for a free connection, then gets an error.
POSTGRES_POOL = {"min_size": 2, "max_size": 20, "timeout": 30}


def databases_from_env(environ: Mapping[str, str], *, base_dir: Path) -> dict:
    url = environ.get("DATABASE_URL", "").strip()
    pooled = environ.get("DATABASE_POOL", "").strip().lower() in ("1", "true", "yes")
    if url:
        # No persistent connections by default: under ASGI (daphne) every request's database work runs
        # in a thread of its own, and persistent connections would keep one open per thread until
        # PostgreSQL refuses more ("too many clients"). DATABASE_CONN_MAX_AGE turns them on where
        # that cannot happen (a worker-only process); health checks catch a restarted server.
        max_age = int(environ.get("DATABASE_CONN_MAX_AGE", "0"))
        database = dict(dj_database_url.parse(url, conn_max_age=max_age, conn_health_checks=True))
        if pooled and "postgresql" in database["ENGINE"]:
            # A pool (psycopg_pool, through Django) instead of a new server process per request: on a
            # small machine PostgreSQL's connection start-up costs more CPU than a page. Only where
            # nothing forks after the first query: a forked child would share the pool's sockets and
            # lack its threads.
            database["CONN_MAX_AGE"] = 0  # the pool keeps the connections; Django refuses both
            database.setdefault("OPTIONS", {})["pool"] = dict(POSTGRES_POOL)
        return {"default": database}
    var_dir = base_dir / "var"
    var_dir.mkdir(parents=True, exist_ok=True)
    return {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": var_dir / "db.sqlite3",
            "OPTIONS": {
                # The web process and the django-q2 workers write to the same file. IMMEDIATE takes the
                # write lock when a transaction starts, so two writers queue on `timeout` instead of one
                # failing with "database is locked" when it upgrades a read lock; it is also what makes
                # session_transition's read-check-update atomic here, where select_for_update is a no-op.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                # WAL: readers (the web process tailing a session's metrics) never wait for the
                # worker's commits, and commits are cheaper; synchronous=NORMAL is WAL's usual pairing.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # Opening an SQLite connection (Django registers its SQL functions on each) costs a page's
            # database work again; a pooled process keeps one per thread, and its threads are few.
            "CONN_MAX_AGE": None if pooled else 0,
        }
    }


def hosts_from_env(environ: Mapping[str, str], name: str) -> list[str]:
    return [host.strip() for host in environ.get(name, "").split(",") if host.strip()]


PRODUCTION = os.environ.get("DJANGO_ENV", "").strip().lower() == "production"
DEBUG = env_bool(os.environ, "DJANGO_DEBUG", default=not PRODUCTION)
SECRET_KEY = secret_key_from_env(os.environ, production=PRODUCTION or not DEBUG)
ALLOWED_HOSTS = hosts_from_env(os.environ, "DJANGO_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = hosts_from_env(os.environ, "DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # daphne first: its runserver (ASGI, WebSockets) replaces Django's.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "django_prometheus",
    # Only for /api/docs: as an app, django-ninja serves Swagger UI from its own static files instead of
    # a CDN, so the docs work offline.
    "ninja",
    # The project's apps, lower layers first: accounts (who), strategies (what), sessions (running
    # it), risk (the checks every order passes), trading (deploying it). Each imports only those above
    # it in this list.
    "accounts",
    "strategies",
    "sessions.apps.TrainingSessionsConfig",
    "risk",
    "trading",
]

MIDDLEWARE = [
    # First and last, so the metrics time the whole stack.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files, before the rest of the stack (they need no session or user): daphne serves only the app.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "trademaster_web.urls"
WSGI_APPLICATION = "trademaster_web.wsgi.application"
ASGI_APPLICATION = "trademaster_web.asgi.application"

CONTEXT_PROCESSORS = [
    "django.template.context_processors.request",
    "django.contrib.auth.context_processors.auth",
    "django.contrib.messages.context_processors.messages",
]
TEMPLATES = [
    # The product's pages (templates/): Jinja2, see trademaster_web.templating.
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {
            "environment": "trademaster_web.templating.environment",
            "context_processors": CONTEXT_PROCESSORS,
        },
    },
    # The admin's and other installed apps' own templates.
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": CONTEXT_PROCESSORS},
    },
]

DATABASES = databases_from_env(os.environ, base_dir=BASE_DIR)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The API's lists come in pages: ?limit= (default 100, at most 1,000) and ?offset=, as
# {"items": [...], "count": N}.
NINJA_PAGINATION_PER_PAGE = 100
NINJA_PAGINATION_MAX_LIMIT = 1000
NINJA_PAGINATION_CLASS = "common.pagination.BoundedLimitOffsetPagination"

# The site's own page, in its look, instead of Django's bare "403 Forbidden".
CSRF_FAILURE_VIEW = "trademaster_web.error_pages.csrf_failure"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

Q_CLUSTER = {
    "name": "trademaster",
    "orm": "default",
    "workers": int(os.environ.get("DJANGO_Q_WORKERS", "2")),
    # The ORM broker hands a task out again when it has not been acknowledged after `retry` seconds,
    # even while the first worker is still running it. A training lasts hours, so both limits are far
    # above the longest training, and `retry` is above `timeout` so a task is killed before it could be
    # handed out twice. Lost workers are detected by the session heartbeat instead (HEARTBEAT_TIMEOUT_SECONDS).
    "timeout": 6 * 60 * 60,
    "retry": 6 * 60 * 60 + 60,
    # The platform retries failed trainings itself (TRADEMASTER["MAX_RETRIES"], resuming from the last
    # checkpoint); a django-q2 retry would start a second copy behind its back.
    "max_attempts": 1,
    # Schedules missed while the cluster was down are not replayed in a burst.
    "catch_up": False,
}

TRADEMASTER = {
    "RUNS_DIR": BASE_DIR / "var" / "runs",
    # Imported datasets are copied here, so a dataset does not depend on where it was imported from.
    "DATA_DIR": BASE_DIR / "var" / "data",
    # POST /api/datasets/import reads files inside this folder only (put them there, or upload them
    # with POST /api/datasets/upload); manage.py import_prices, run by whoever has a shell, reads any.
    "IMPORT_DIR": Path(os.environ.get("TRADEMASTER_IMPORT_DIR", BASE_DIR / "var" / "import")),
    # What a Prometheus scraper sends as a bearer token to read /metrics ("" : staff logins only).
    "METRICS_TOKEN": os.environ.get("TRADEMASTER_METRICS_TOKEN", ""),
    # The largest upload POST /api/datasets/upload takes, all files together.
    "UPLOAD_MAX_BYTES": 200 * 1024 * 1024,
    "MAX_RETRIES": int(os.environ.get("TRADEMASTER_MAX_RETRIES", "2")),
    "MAX_GPU_JOBS_PER_DEVICE": 1,
    "MAX_SESSIONS_PER_USER": 2,
    "HEARTBEAT_SECONDS": 10,
    "HEARTBEAT_TIMEOUT_SECONDS": 60,
    "RESOURCE_SAMPLE_SECONDS": 5,
    # How often each worker's watchdog looks for running sessions whose heartbeat stopped.
    "WATCHDOG_SECONDS": 15,
    # Live session streams (sessions.stream): how often the tail of a watched session reads its new
    # metric points (the latency a viewer sees, and one query per watched session per tick), and its
    # status and resource samples.
    "STREAM_POLL_SECONDS": float(os.environ.get("TRADEMASTER_STREAM_POLL_SECONDS", "0.05")),
    "STREAM_STATUS_POLL_SECONDS": 0.5,
    # How often a training reads its session's stop and pause requests between rollouts: one small
    # query a second per training, and a stop takes effect within about a second plus one rollout.
    "REQUEST_POLL_SECONDS": 1.0,
    # torch threads of each training process. None: its share of this machine's cores, WEB_CORES
    # left to the web processes and the rest divided among Q_CLUSTER["workers"] trainings at once.
    "TRAINING_THREADS": int(os.environ["TRADEMASTER_TRAINING_THREADS"]) if os.environ.get(
        "TRADEMASTER_TRAINING_THREADS") else None,
    "WEB_CORES": 1,
    # A worker whose database stops answering waits for it (retrying its write, keeping its resource
    # samples) rather than giving its session up: first DATABASE_BACKOFF_SECONDS[0] between tries,
    # doubling to at most DATABASE_BACKOFF_SECONDS[1], for at most DATABASE_WAIT_SECONDS in all.
    "DATABASE_WAIT_SECONDS": 600,
    "DATABASE_BACKOFF_SECONDS": (0.5, 15.0),
    # Trading (the `manage.py trade` process). A deployment is held by one process at a time through
    # a lease it renews with its heartbeat; another process takes a deployment over once its lease
    # has expired, or at once when the holder runs on the same host and its process is gone.
    "TRADE_LEASE_SECONDS": 30,
    "TRADE_HEARTBEAT_SECONDS": 5,
    # The longest the trading loop sleeps between looks at its deployments and for new ones: how soon a
    # new deployment starts and a pause or stop is seen when no bar is due.
    "TRADE_IDLE_SECONDS": float(os.environ.get("TRADEMASTER_TRADE_IDLE_SECONDS", "0.5")),
    # Where a deployment keeps its copy of the checkpoint it trades.
    "DEPLOYMENTS_DIR": BASE_DIR / "var" / "deployments",
    # The Fernet key sealing exchange API keys in the database (trading.credentials); "" refuses to store any.
    "EXCHANGE_KEY": os.environ.get("TRADEMASTER_EXCHANGE_KEY", ""),
}

# The channel layer only fans a session's new rows out to its viewers inside one daphne process: the
# points cross processes through the database (sessions.stream), so the in-memory layer serves on
# SQLite and PostgreSQL alike. The capacity is per viewer: a viewer still sending its history queues
# the live messages meanwhile (and fetches any it lost from the database).
CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}},
}
