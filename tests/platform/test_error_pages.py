"""Errors never leak: the site's own pages for 400, 403, 404 and 500, with DEBUG off as `make run` serves."""
import pytest
from django.test import Client

from trademaster_web.error_pages import CSRF_FAILED, NOT_FOUND, SERVER_ERROR

pytestmark = pytest.mark.django_db

LEAKS = ("Traceback", "URLconf", "settings", "/srv/trademaster", "sessionid", "DEBUG")


def shows_nothing_inside(page: str) -> bool:
    return not any(leak in page for leak in LEAKS)


def test_a_missing_page_is_the_sites_404_without_the_url_map(client, user):
    client.force_login(user)

    response = client.get("/no/such/page/")

    page = response.content.decode()
    assert response.status_code == 404 and NOT_FOUND in page and "TradeMaster" in page
    assert "Dashboard" in page  # the site's own header, for a logged-in user
    assert shows_nothing_inside(page)


def test_a_bug_is_the_sites_500_without_the_traceback(settings, user):
    settings.ROOT_URLCONF = "tests.platform.error_urls"
    client = Client(raise_request_exception=False)
    client.force_login(user)

    response = client.get("/broken/")

    page = response.content.decode()
    assert response.status_code == 500 and SERVER_ERROR in page and "TradeMaster" in page
    assert shows_nothing_inside(page)


def test_a_form_from_another_site_is_the_sites_403(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post("/strategies/new/", {"name": "x"})

    assert response.status_code == 403 and CSRF_FAILED in response.content.decode()


def test_the_favicon_is_served(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
