"""ASGI entry point: Django over HTTP; the WebSocket routes join the router when their consumers exist."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trademaster_web.settings")

# Build the Django app first: it sets Django up, and consumer modules import models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi_app})
