"""/metrics for Prometheus, not for anyone who asks: the numbers describe the platform's load and its
users' activity. A scraper sends `Authorization: Bearer <TRADEMASTER_METRICS_TOKEN>` (README,
Operations); a logged-in staff member may look too. Without a configured token only staff get in."""
import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_prometheus.exports import ExportToDjangoView

METRICS_REFUSED = "metrics need 'Authorization: Bearer <TRADEMASTER_METRICS_TOKEN>' or a staff login\n"


def metrics_view(request: HttpRequest) -> HttpResponse:
    if _scraper(request) or (request.user.is_authenticated and request.user.is_staff):
        return ExportToDjangoView(request)
    response = HttpResponse(METRICS_REFUSED, status=401, content_type="text/plain")
    response["WWW-Authenticate"] = "Bearer"
    return response


def _scraper(request: HttpRequest) -> bool:
    token = settings.TRADEMASTER["METRICS_TOKEN"]
    sent = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
