"""The project's URLs and one view with a bug, to see the 500 page (settings.ROOT_URLCONF in a test)."""
from django.urls import path

from trademaster_web.urls import *  # noqa: F401,F403
from trademaster_web.urls import urlpatterns as project_urlpatterns


def broken_view(request):
    raise RuntimeError("a bug with a secret: /srv/trademaster/var/db.sqlite3")


urlpatterns = [path("broken/", broken_view), *project_urlpatterns]
