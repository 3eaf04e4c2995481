"""ASGI entry point: Django over HTTP, and the WebSocket routes (sessions.routing) under daphne."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trademaster_web.settings")

# Build the Django app first: it sets Django up, and consumer modules import models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from sessions.routing import websocket_urlpatterns  # noqa: E402


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
    "http": django_asgi_app,
    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})
