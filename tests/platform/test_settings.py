import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from trademaster_web.settings import (
    DEMO_SECRET_KEY,
    POSTGRES_POOL,
    SECRET_KEY_REQUIRED,
    databases_from_env,
    env_bool,
    hosts_from_env,
    secret_key_from_env,
)

ROOT = Path(__file__).resolve().parents[2]


def test_databases_default_to_sqlite_in_var_which_is_created(tmp_path):
    databases = databases_from_env({}, base_dir=tmp_path)

    default = databases["default"]
    assert default["ENGINE"] == "django.db.backends.sqlite3"
    assert default["NAME"] == tmp_path / "var" / "db.sqlite3"
    assert (tmp_path / "var").is_dir()


def test_database_url_switches_to_postgresql(tmp_path):
    databases = databases_from_env(
        {"DATABASE_URL": "postgres://trader:s3cret@db.example:5433/trademaster"}, base_dir=tmp_path
    )

    default = databases["default"]
    assert default["ENGINE"] == "django.db.backends.postgresql"
    assert (default["NAME"], default["USER"], default["PASSWORD"]) == ("trademaster", "trader", "s3cret")
    assert (default["HOST"], default["PORT"]) == ("db.example", 5433)
    assert default["CONN_HEALTH_CHECKS"] is True
    assert not (tmp_path / "var").exists()


def test_secret_key_falls_back_to_the_demo_key_outside_production():
    assert secret_key_from_env({}, production=False) == DEMO_SECRET_KEY
    assert secret_key_from_env({"DJANGO_SECRET_KEY": "k" * 50}, production=False) == "k" * 50


@pytest.mark.parametrize("environ", [{}, {"DJANGO_SECRET_KEY": ""}, {"DJANGO_SECRET_KEY": DEMO_SECRET_KEY}])
def test_production_refuses_a_missing_or_demo_secret_key(environ):
    with pytest.raises(ImproperlyConfigured) as raised:
        secret_key_from_env(environ, production=True)

    assert str(raised.value) == SECRET_KEY_REQUIRED


def test_production_accepts_a_real_secret_key():
    assert secret_key_from_env({"DJANGO_SECRET_KEY": "k" * 50}, production=True) == "k" * 50


def test_importing_settings_in_production_without_a_key_fails_with_the_message():
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    environ |= {"DJANGO_ENV": "production", "DJANGO_SETTINGS_MODULE": "trademaster_web.settings"}

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60,
    )

    assert result.returncode != 0
    assert SECRET_KEY_REQUIRED in result.stderr


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("True", True), ("off", False), ("0", False)])
def test_env_bool_reads_the_usual_spellings(value, expected):
    assert env_bool({"DJANGO_DEBUG": value}, "DJANGO_DEBUG", default=not expected) is expected


def test_env_bool_refuses_anything_else():
    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG='maybe'"):
        env_bool({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG", default=False)


def test_allowed_hosts_are_comma_separated():
    assert hosts_from_env({"DJANGO_ALLOWED_HOSTS": "a.example, b.example,,"}, "DJANGO_ALLOWED_HOSTS") == [
        "a.example",
        "b.example",
    ]


def test_django_q_never_hands_a_running_training_out_twice():
    cluster = settings.Q_CLUSTER
    assert cluster["orm"] == "default"
    assert cluster["max_attempts"] == 1
    assert cluster["retry"] > cluster["timeout"] >= 6 * 60 * 60


def test_postgresql_connections_are_not_kept_by_default_because_asgi_opens_one_per_thread(tmp_path):
    url = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test"}
    assert databases_from_env(url, base_dir=tmp_path)["default"]["CONN_MAX_AGE"] == 0
    kept = databases_from_env({**url, "DATABASE_CONN_MAX_AGE": "300"}, base_dir=tmp_path)
    assert kept["default"]["CONN_MAX_AGE"] == 300


def test_database_pool_gives_postgresql_a_pool_per_process_and_sqlite_a_kept_connection(tmp_path):
    url = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test", "DATABASE_CONN_MAX_AGE": "300"}
    pooled = databases_from_env({**url, "DATABASE_POOL": "1"}, base_dir=tmp_path)["default"]
    assert pooled["OPTIONS"]["pool"] == POSTGRES_POOL
    assert pooled["CONN_MAX_AGE"] == 0  # Django refuses a pool with persistent connections
    assert "pool" not in databases_from_env(url, base_dir=tmp_path)["default"].get("OPTIONS", {})
    sqlite = databases_from_env({"DATABASE_POOL": "1"}, base_dir=tmp_path)["default"]
    assert "pool" not in sqlite["OPTIONS"]
    assert sqlite["CONN_MAX_AGE"] is None  # kept for the life of its thread
    assert databases_from_env({}, base_dir=tmp_path)["default"]["CONN_MAX_AGE"] == 0
