"""The site's own error pages (settings: handler400/403/404/500, CSRF_FAILURE_VIEW), in the site's look.

They say what happened in a sentence and never how: no traceback, no setting, no path, no URL map
(those are in the log, for the operators). A 404 does not say whether the thing exists and is someone
else's.
"""
import logging

from django.http import HttpResponse, HttpResponseServerError
from django.shortcuts import render

log = logging.getLogger(__name__)

BAD_REQUEST = "The request could not be understood: it was malformed or too large."
FORBIDDEN = "You may not do this."
CSRF_FAILED = "This form expired or came from another site. Go back, reload the page and try again."
NOT_FOUND = "There is no such page, or it is not one you may see."
SERVER_ERROR = "Something went wrong on our side. It has been logged; please try again later."
# When even the page could not be drawn (the database is down, say): no template, no query.
BARE_SERVER_ERROR = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Server error · TradeMaster</title>'
    '</head><body style="font:14px system-ui,sans-serif;margin:24px"><h1>Server error</h1><p>{message}</p>'
    '</body></html>'
)


def _page(request, status: int, title: str, message: str) -> HttpResponse:
    return render(request, "error.html", {"title": title, "message": message}, status=status)


def bad_request(request, exception=None) -> HttpResponse:
    return _page(request, 400, "Bad request", BAD_REQUEST)


def forbidden(request, exception=None) -> HttpResponse:
    # The services' refusals say why in a sentence meant for the user ("strategy 3 belongs to ...").
    reason = str(exception or "") or FORBIDDEN
    return _page(request, 403, "Forbidden", reason)


def csrf_failure(request, reason: str = "") -> HttpResponse:
    return _page(request, 403, "Forbidden", CSRF_FAILED)


def not_found(request, exception=None) -> HttpResponse:
    return _page(request, 404, "Page not found", NOT_FOUND)


def server_error(request) -> HttpResponse:
    try:
        return _page(request, 500, "Server error", SERVER_ERROR)
    except Exception:
        log.exception("the 500 page could not be drawn; answering a bare one")
        return HttpResponseServerError(BARE_SERVER_ERROR.format(message=SERVER_ERROR))
