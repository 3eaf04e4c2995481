import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.apps import apps
from django.contrib import admin
from django.contrib.sessions.models import Session
from django.urls import reverse

from sessions.models import PerformanceMetric, ResourceUsage
from trademaster_web.metrics import METRICS_REFUSED

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def test_both_sessions_apps_are_installed_under_their_own_labels():
    assert apps.get_app_config("sessions").name == "django.contrib.sessions"
    assert apps.get_app_config("training_sessions").name == "sessions"


def test_login_stores_a_django_session_and_reaches_the_admin(client, django_user_model):
    django_user_model.objects.create_user(username="grace", password=PASSWORD, is_staff=True, is_superuser=True)

    response = client.post(reverse("login"), {"username": "grace", "password": PASSWORD, "next": "/admin/"})

    assert response.status_code == 302 and response.url == "/admin/"
    assert Session.objects.count() == 1
    index = client.get("/admin/")
    assert index.status_code == 200
    assert b"Strategy sessions" in index.content


def test_login_page_renders(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get("/admin/")

    assert response.status_code == 302 and response.url.startswith("/admin/login/")


@pytest.fixture
def session_with_rows(make_session):
    session = make_session("running")
    PerformanceMetric.objects.create(session=session, metric_type="train/loss", value=0.5, epoch=1)
    PerformanceMetric.objects.create(session=session, metric_type="eval/sharpe", value=None, epoch=1)
    ResourceUsage.objects.create(session=session, cpu_percent=90.0, memory_mb=512.0)
    return session


@pytest.mark.parametrize("model", admin.site._registry, ids=lambda model: model._meta.label)
def test_every_admin_changelist_and_change_page_renders(admin_client, session_with_rows, model):
    opts = model._meta
    changelist = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == 200

    obj = model._default_manager.first()
    if obj is not None:
        change = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
        assert change.status_code == 200


def test_our_models_are_all_registered():
    ours = {"strategies", "training_sessions", "trading", "risk"}
    models = {m for m in apps.get_models() if m._meta.app_label in ours}
    assert models <= set(admin.site._registry)


def test_session_admin_links_to_its_own_metrics_and_resource_usage(admin_client, session_with_rows, make_session):
    other = make_session("pending")
    PerformanceMetric.objects.create(session=other, metric_type="train/loss", value=9.0, epoch=1)

    pk = session_with_rows.pk
    page = admin_client.get(reverse("admin:training_sessions_strategysession_change", args=[pk]))
    metrics_url = f"{reverse('admin:training_sessions_performancemetric_changelist')}?session__id__exact={pk}"
    usage_url = f"{reverse('admin:training_sessions_resourceusage_changelist')}?session__id__exact={pk}"
    assert metrics_url in page.content.decode()
    assert usage_url in page.content.decode()

    metrics = admin_client.get(metrics_url)
    assert metrics.status_code == 200
    assert {m.session_id for m in metrics.context["cl"].result_list} == {pk}
    assert admin_client.get(usage_url).status_code == 200


def test_session_admin_cannot_edit_status(admin_client, make_session):
    session = make_session("queued")
    url = reverse("admin:training_sessions_strategysession_change", args=[session.pk])

    form = admin_client.get(url).context["adminform"].form
    assert "status" not in form.fields


@pytest.fixture
def metrics_token(settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "METRICS_TOKEN": "scrape-me"}
    return "scrape-me"


def test_metrics_are_served_to_the_configured_scraper(client, metrics_token):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})

    assert response.status_code == 200
    assert b"django_http_requests" in response.content


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer "}])
def test_metrics_refuse_anyone_else(client, metrics_token, headers):
    response = client.get("/metrics", headers=headers)

    assert response.status_code == 401 and response.content.decode() == METRICS_REFUSED
    assert b"django_http" not in response.content


def test_metrics_without_a_token_are_for_staff_only(client, user, staff_user):
    anonymous = client.get("/metrics", headers={"Authorization": "Bearer "})
    client.force_login(user)
    quant = client.get("/metrics")
    client.force_login(staff_user)
    operator = client.get("/metrics")

    assert (anonymous.status_code, quant.status_code, operator.status_code) == (401, 401, 200)


def test_the_api_docs_work_offline(client):
    page = client.get("/api/docs").content.decode()

    assert "/static/ninja/swagger-ui-bundle.js" in page and "cdn." not in page


def test_asgi_application_serves_http(metrics_token):
    from trademaster_web.asgi import application

    headers = [(b"host", b"testserver"), (b"authorization", f"Bearer {metrics_token}".encode())]
    communicator = HttpCommunicator(application, "GET", "/metrics", headers=headers)
    response = async_to_sync(communicator.get_response)()

    assert response["status"] == 200
