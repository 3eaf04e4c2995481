"""Real-browser tests: Chromium (Debian's /usr/bin/chromium, driven by Playwright) against daphne
serving the project (channels' ChannelsLiveServerTestCase).

The server runs in a process of its own (forked when the test class starts), which finds the test
database by its TEST NAME (channels.testing.live.set_database_connection). So the TEST NAME is set
when this directory is collected, before pytest-django creates the test database: on SQLite a file
(an in-memory database is invisible to another process; a run that includes these tests puts the
whole run's SQLite test database in that file), elsewhere the name Django would choose anyway
("test_" + NAME; without it the server would add a second "test_" to the NAME Django rewrote).
"""
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.db.backends.base.creation import TEST_DATABASE_PREFIX

CHROMIUM = "/usr/bin/chromium"
# Playwright's own browser download does not work offline; the distribution's Chromium does (the
# Makefile's test target installs it). No sandbox: CI runs as root in a container.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SQLITE_TEST_DB = Path(settings.BASE_DIR) / "var" / "test_browser.sqlite3"


def _name_the_test_database() -> None:
    database = connections.databases["default"]
    test = database.setdefault("TEST", {})
    if test.get("NAME"):
        return
    if database["ENGINE"] == "django.db.backends.sqlite3":
        test["NAME"] = str(SQLITE_TEST_DB)
    else:
        test["NAME"] = TEST_DATABASE_PREFIX + database["NAME"]


_name_the_test_database()
