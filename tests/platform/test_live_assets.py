"""The live pages load the chart library from our own static files: the product works offline, so no
template may point at a CDN, and the vendored files must be there for the finders (and collectstatic)."""
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.urls import reverse

from sessions.models import SessionStatus as S

pytestmark = pytest.mark.django_db

VENDOR = "vendor/uplot"
LIBRARY = f"/static/{VENDOR}/uPlot.iife.min.js"
LIBRARY_CSS = f"/static/{VENDOR}/uPlot.min.css"
# An src/href that leaves the site: http://, https:// or protocol-relative //.
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.fixture
def ada(client, user):
    client.force_login(user)
    return client


def test_the_vendored_library_its_css_licence_and_readme_are_static_files():
    for name in ("uPlot.iife.min.js", "uPlot.min.css", "LICENSE", "README.md"):
        assert finders.find(f"{VENDOR}/{name}"), name
    version = re.search(r"uPlot \(v([\d.]+)\)", Path(finders.find(f"{VENDOR}/uPlot.iife.min.js")).read_text()[:200])
    assert version and f"uPlot {version.group(1)}" in Path(finders.find(f"{VENDOR}/README.md")).read_text()


def test_no_template_loads_anything_from_another_site():
    templates = list(Path(settings.BASE_DIR, "templates").rglob("*.html"))
    assert templates
    for template in templates:
        assert not EXTERNAL.search(template.read_text()), template


def test_our_scripts_fetch_nothing_from_another_site():
    for script in Path(settings.BASE_DIR, "static", "js").glob("*.js"):
        assert "http://" not in script.read_text() and "https://" not in script.read_text(), script


def test_the_session_page_loads_the_library_and_its_live_script(ada, make_session):
    session = make_session(S.RUNNING, progress_epoch=2, progress_total=8)

    page = ada.get(reverse("sessions:detail", args=[session.pk])).content.decode()

    for asset in (LIBRARY, LIBRARY_CSS, "/static/js/charts.js", "/static/js/session_live.js"):
        assert asset in page, asset
    assert f'data-session-id="{session.pk}"' in page and 'data-status="running"' in page
    for chart in ("chart-loss", "chart-reward", "chart-return", "chart-sharpe", "chart-cpu", "chart-memory"):
        assert f'id="{chart}"' in page
    assert 'id="alerts"' in page and 'id="resource-history"' in page


def test_the_comparison_and_report_pages_load_the_library(ada, make_session):
    report = {"equity_curve": [{"date": "2024-01-01", "value": 100.0, "benchmark": 100.0}],
              "drawdown": [{"date": "2024-01-01", "strategy": 0.0, "benchmark": 0.0}], "metrics": {}}
    session = make_session(S.COMPLETED, result_data={"report": report})

    compare = ada.get(reverse("sessions:compare") + f"?ids={session.pk}").content.decode()
    report_page = ada.get(reverse("sessions:report", args=[session.pk])).content.decode()

    assert LIBRARY in compare and "/static/js/compare.js" in compare
    assert LIBRARY in report_page and "/static/js/report.js" in report_page
    assert 'id="report-curves"' in report_page and "<svg" in report_page  # the SVG stays as the fallback


def test_the_dashboard_follows_its_sessions_even_when_none_is_active(ada, make_session):
    # A session submitted elsewhere (another tab, the API) must appear without a reload.
    assert "/static/js/dashboard_live.js" in ada.get(reverse("dashboard")).content.decode()

    session = make_session(S.RUNNING, progress_epoch=1, progress_total=4)
    page = ada.get(reverse("dashboard")).content.decode()

    assert "/static/js/dashboard_live.js" in page
    assert f'data-session-id="{session.pk}"' in page


def test_the_api_the_dashboard_polls_answers_the_login_cookie(ada, make_session):
    session = make_session(S.RUNNING, progress_epoch=3, progress_total=10)

    response = ada.get("/api/sessions", {"status": "running"})

    assert response.status_code == 200
    assert [(s["id"], s["status"], s["progress_epoch"], s["progress_total"]) for s in response.json()["items"]] == [
        (session.pk, "running", 3, 10)
    ]
