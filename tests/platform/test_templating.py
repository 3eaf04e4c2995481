import datetime

import jinja2
import pytest
from django.template import engines
from django.utils import timezone

from sessions.report_format import clock


@pytest.fixture
def pages():
    return engines["jinja2"]


def test_a_variable_the_view_did_not_pass_is_an_error_not_an_empty_cell(pages):
    template = pages.from_string("Sharpe {{ sharpe|metric }}")

    assert template.render({"sharpe": 1.23456}) == "Sharpe 1.2346"
    with pytest.raises(jinja2.UndefinedError, match="'sharpe' is undefined"):
        template.render({})


def test_values_are_escaped_and_urls_reversed(pages):
    html = pages.from_string('<a href="{{ url("sessions:detail", 7) }}">{{ name }}</a>').render({"name": "<b>&"})

    assert html == '<a href="/sessions/7/">&lt;b&gt;&amp;</a>'


def test_dates_print_in_the_current_time_zone_in_djangos_format(pages, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    moment = datetime.datetime(2024, 1, 2, 12, 30, 5, tzinfo=datetime.timezone.utc)
    template = pages.from_string('{{ moment|date("Y-m-d H:i") }}|{{ none|date("Y-m-d") or "—" }}')

    with timezone.override("Europe/Berlin"):
        assert template.render({"moment": moment, "none": None}) == "2024-01-02 13:30|—"
        assert clock(moment) == "13:30:05"


def test_the_admin_keeps_djangos_template_language(admin_client):
    response = admin_client.get("/admin/")

    assert response.status_code == 200
    assert "admin/index.html" in [t.name for t in response.templates]
