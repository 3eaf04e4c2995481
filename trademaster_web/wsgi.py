"""WSGI entry point. The product is served over ASGI (asgi.py, WebSockets); this stays for tools that
only speak WSGI."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trademaster_web.settings")

application = get_wsgi_application()
