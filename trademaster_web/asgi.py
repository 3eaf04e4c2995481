"""ASGI entry point under daphne: Django's pages and API over HTTP, and the WebSocket routes
(sessions.routing, trading.routing) through Channels.

HTTP goes to Django's WSGI handler, run by a2wsgi in a pool of threads: every view here is sync, and
Django's ASGI handler would switch threads around each sync middleware hook (about fifteen switches, two
thirds of the time of a small page); a2wsgi runs the whole stack in one pool thread per request.
"""
import gc
import os
from concurrent.futures import ThreadPoolExecutor

from a2wsgi import WSGIMiddleware
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trademaster_web.settings")

# Requests one process works on at once; the rest wait their turn in a2wsgi's queue. Few, because the
# GIL runs one thread at a time anyway: with ten, every request shared the core with nine others until
# it was done, and the switching cost CPU (bench/api.py, PostgreSQL, 100 req/s: session page p95
# 290-310 ms with 10 threads, 70-120 ms with 2). Two keep the core busy while one waits on the database.
HTTP_THREADS_VARIABLE = "WEB_HTTP_THREADS"
HTTP_THREADS_INVALID = HTTP_THREADS_VARIABLE + " must be a whole number of threads, at least 1; got {value!r}"


def http_threads(environ) -> int:
    value = environ.get(HTTP_THREADS_VARIABLE, "2")
    if not value.strip().isdigit() or int(value) < 1:
        raise ImproperlyConfigured(HTTP_THREADS_INVALID.format(value=value))
    return int(value)


HTTP_THREADS = http_threads(os.environ)


class WSGIApp(WSGIMiddleware):
    """a2wsgi's WSGIMiddleware with a thread pool of each process's own: a forked child (the test suite's
    live server is one) would inherit the parent's pool without its threads, and wait on it forever."""

    def __init__(self, app, *, workers: int):
        super().__init__(app, workers=workers)
        self.workers = workers
        os.register_at_fork(after_in_child=self._new_pool)

    def _new_pool(self) -> None:
        self.executor = ThreadPoolExecutor(thread_name_prefix="WSGI", max_workers=self.workers)


# Build the Django app first: it sets Django up, and consumer modules import models.
django_http_app = WSGIApp(get_wsgi_application(), workers=HTTP_THREADS)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from sessions.routing import websocket_urlpatterns as session_streams  # noqa: E402
from trading.routing import websocket_urlpatterns as deployment_streams  # noqa: E402


class AllowedHostsOriginValidator(OriginValidator):
    """Channels' AllowedHostsOriginValidator, except that a handshake without an Origin header passes.

    The check stops cross-site WebSocket hijacking: a page elsewhere opening a socket with the user's
    cookie. Browsers always send Origin, so that attack always carries one; a client without it is a
    program (a token client, a script), which channels' validator would refuse whatever its token.
    ALLOWED_HOSTS is read per connection, not at import, so settings overrides apply.
    """

    def __init__(self, application):
        super().__init__(application, allowed_origins=[])

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        hosts = settings.ALLOWED_HOSTS
        if settings.DEBUG and not hosts:
            hosts = ["localhost", "127.0.0.1", "[::1]"]  # what Django itself allows then
        return any(pattern == "*" or self.match_allowed_origin(parsed_origin, pattern) for pattern in hosts)


application = ProtocolTypeRouter({
    "http": django_http_app,
    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(session_streams + deployment_streams))),
})

# Everything imported so far lives as long as the process: out of the collector's sight, a full
# collection walks only what requests allocate (with Django, numpy and pandas loaded, walking it all took
# 55 ms, a pause every request queued behind then).
gc.freeze()
