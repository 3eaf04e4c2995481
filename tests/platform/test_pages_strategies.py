import html
import json

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from markupsafe import escape

from sessions.models import SessionStatus as S
from sessions.models import StrategySession
from sessions.services import TOO_MANY_SESSIONS
from strategies.forms import RELOAD
from strategies.models import Strategy
from tests.platform.html_forms import shown

pytestmark = pytest.mark.django_db

CREATE = reverse("strategies:create")


def shown_form(client, url, **params) -> dict:
    """What a browser sends for the strategy form as `url` shows it: every input with its value."""
    response = client.get(url, params)
    assert response.status_code == 200
    return form_of(response).values


def form_of(response):
    return shown(response, "strategy-form")


@pytest.fixture
def ada(client, user):
    client.force_login(user)
    return client


# --------------------------------------------------------------------------------------------- access

@pytest.mark.parametrize("name, args", [
    ("strategies:list", []), ("strategies:create", []), ("strategies:detail", [1]), ("strategies:edit", [1]),
])
def test_anonymous_users_are_sent_to_log_in(client, name, args):
    url = reverse(name, args=args)

    response = client.get(url)

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("name", ["strategies:train", "strategies:delete"])
def test_anonymous_posts_are_sent_to_log_in_and_change_nothing(client, strategy, name):
    response = client.post(reverse(name, args=[strategy.pk]))

    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert Strategy.objects.filter(pk=strategy.pk).exists()
    assert not StrategySession.objects.exists()


@pytest.mark.parametrize("name", ["strategies:detail", "strategies:edit", "strategies:train", "strategies:delete"])
def test_someone_elses_strategy_is_not_found(client, other_user, strategy, name):
    client.force_login(other_user)
    url = reverse(name, args=[strategy.pk])

    response = client.post(url) if name.endswith(("train", "delete")) else client.get(url)

    assert response.status_code == 404
    assert Strategy.objects.filter(pk=strategy.pk).exists()
    assert not StrategySession.objects.exists()


def test_a_superuser_sees_and_edits_everyones_strategies(client, superuser, strategy):
    client.force_login(superuser)

    assert strategy.name in client.get(reverse("strategies:list")).content.decode()
    assert client.get(reverse("strategies:detail", args=[strategy.pk])).status_code == 200
    assert client.get(reverse("strategies:edit", args=[strategy.pk])).status_code == 200


def test_staff_neither_see_nor_change_someone_elses_strategy(client, staff_user, user, dataset):
    ada_strategy = _create(client, user, dataset, name="ada's")
    client.force_login(staff_user)
    edit = reverse("strategies:edit", args=[ada_strategy.pk])

    assert client.get(reverse("strategies:detail", args=[ada_strategy.pk])).status_code == 404
    assert client.get(edit).status_code == 404
    assert client.post(edit, {"name": "renamed"}).status_code == 404
    listed = client.get(reverse("strategies:list")).content.decode()
    assert reverse("strategies:detail", args=[ada_strategy.pk]) not in listed
    ada_strategy.refresh_from_db()
    assert ada_strategy.name == "ada's"


def test_actions_refuse_get(ada, strategy):
    assert ada.get(reverse("strategies:train", args=[strategy.pk])).status_code == 405
    assert ada.get(reverse("strategies:delete", args=[strategy.pk])).status_code == 405


# ---------------------------------------------------------------------------------------- list, detail

def test_the_list_shows_my_strategies_and_not_others(ada, strategy, other_user, dataset):
    Strategy.objects.create(owner=other_user, name="linus's secret", task="portfolio_management", agent="ppo",
                            dataset=dataset, config={})

    page = ada.get(reverse("strategies:list")).content.decode()

    assert "ppo on synthetic" in page and "synthetic-daily" in page
    assert "linus's secret" not in html.unescape(page)


def test_the_detail_shows_the_config_and_the_sessions(ada, strategy, make_session):
    session = make_session("running", progress_epoch=3, progress_total=10)
    type(strategy.dataset).objects.filter(pk=strategy.dataset_id).update(path="/srv/trademaster/var/data/1-d.csv")
    strategy.refresh_from_db()

    response = ada.get(reverse("strategies:detail", args=[strategy.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    # Escaped, as every value; the dataset by its name, never the server path the engine reads.
    shown = {**strategy.config, "dataset": strategy.dataset.name}
    assert str(escape(json.dumps(shown, indent=2, sort_keys=True))) in page
    assert strategy.dataset.path not in page
    assert f"#{session.pk}" in page and "3/10" in page
    assert reverse("strategies:train", args=[strategy.pk]) in page


# ---------------------------------------------------------------------------------------------- create

def test_the_form_has_one_input_per_parameter_with_default_bounds_and_description(ada, dataset):
    response = ada.get(CREATE, {"task": "portfolio_management", "agent": "ppo"})

    values = form_of(response).values
    page = response.content.decode()
    assert values["env__window"] == "10"
    assert values["agent_params__learning_rate"] == "0.0003"
    assert values["trainer__epochs"] == "10"
    assert 'name="env__window"' in page and 'min="1"' in page
    assert "Bars of market features in each observation" in page
    assert "Default: 10. Range: ≥ 1." in page
    assert "Range: &gt; 0, ≤ 1." in page  # learning_rate: an exclusive and an inclusive bound
    assert 'aria-describedby="id_env__window_helptext"' in page


def test_another_task_and_agent_give_that_pairs_parameters(ada, dataset):
    values = shown_form(ada, CREATE, task="algorithmic_trading", agent="dqn")

    assert "agent_params__exploration_final_eps" in values
    assert "agent_params__gae_lambda" not in values
    assert "env__action_mode" in values


def test_a_preset_fills_its_values_into_the_form(ada, dataset):
    values = shown_form(ada, CREATE, task="portfolio_management", agent="ppo", preset="quick")

    assert values["trainer__epochs"] == "2"
    assert values["trainer__num_envs"] == "8"


def test_reloading_for_another_pair_keeps_the_name_and_saves_nothing(ada, dataset):
    data = shown_form(ada, CREATE) | {"name": "my dqn", "task": "algorithmic_trading", "agent": "ppo", RELOAD: "1"}

    response = ada.post(CREATE, data)

    form = form_of(response)
    assert response.status_code == 200 and not form.errors  # shown again, not validated
    assert form.values["name"] == "my dqn"
    assert (form.values["task"], form.values["agent"]) == ("algorithmic_trading", "ppo")
    assert "env__order_size" in form.values
    assert not Strategy.objects.exists()


def test_creating_saves_the_values_given_and_lists_the_strategy(ada, user, dataset):
    data = shown_form(ada, CREATE) | {
        "name": "wide ppo", "dataset": dataset.pk, "env__window": "20", "agent_params__hidden": "128, 32",
        "trainer__epochs": "3", "env__episode_length": "",
    }
    data.pop("env__long_only", None)  # an unticked box

    response = ada.post(CREATE, data)

    strategy = Strategy.objects.get(name="wide ppo")
    assert response.status_code == 302 and response.url == reverse("strategies:detail", args=[strategy.pk])
    assert strategy.owner == user and strategy.task == "portfolio_management" and strategy.agent == "ppo"
    assert strategy.config["env"]["window"] == 20
    assert strategy.config["env"]["long_only"] is False
    assert strategy.config["env"]["episode_length"] is None
    assert strategy.config["agent_params"]["hidden"] == [128, 32]
    assert strategy.config["trainer"]["epochs"] == 3
    assert "wide ppo" in ada.get(reverse("strategies:list")).content.decode()


def test_invalid_values_come_back_on_their_inputs_and_nothing_is_saved(ada, dataset):
    data = shown_form(ada, CREATE) | {
        "name": "broken", "env__window": "0", "agent_params__learning_rate": "2", "agent_params__hidden": "64, wide",
    }

    response = ada.post(CREATE, data)

    errors = form_of(response).errors
    assert response.status_code == 200
    # "hidden" is refused by the form (not a number); the engine's refusals need the rest to parse.
    assert errors["agent_params__hidden"] == ["'wide' is not an integer"]
    assert not Strategy.objects.exists()

    data["agent_params__hidden"] = "64, 64"
    response = ada.post(CREATE, data)

    errors = form_of(response).errors
    assert set(errors) == {"env__window", "agent_params__learning_rate"}
    assert errors["env__window"] == ["Input should be greater than or equal to 1"]
    assert errors["agent_params__learning_rate"] == ["Input should be less than or equal to 1"]
    page = response.content.decode()
    assert "Nothing was saved" in page and "Input should be greater than or equal to 1" in page
    assert form_of(response).values["env__window"] == "0"  # what was typed stays in the input
    assert not Strategy.objects.exists()


def test_a_trainer_value_out_of_bounds_is_reported_on_its_input(ada, dataset):
    response = ada.post(CREATE, shown_form(ada, CREATE) | {"name": "broken", "trainer__epochs": "0"})

    assert form_of(response).errors == {"trainer__epochs": ["Input should be greater than or equal to 1"]}
    assert not Strategy.objects.exists()


def test_errors_in_several_sections_are_all_reported_in_one_round(ada, dataset):
    response = ada.post(CREATE, shown_form(ada, CREATE) | {"name": "broken", "trainer__epochs": "0",
                                                         "env__window": "0"})

    assert set(form_of(response).errors) == {"trainer__epochs", "env__window"}
    assert not Strategy.objects.exists()


def test_a_taken_name_is_reported_on_the_name(ada, strategy, dataset):
    data = shown_form(ada, CREATE) | {"name": strategy.name}

    response = ada.post(CREATE, data)

    assert "already have a strategy named" in form_of(response).errors["name"][0]
    assert Strategy.objects.count() == 1


def test_an_agent_the_task_has_no_use_for_is_refused(ada, dataset):
    data = shown_form(ada, CREATE) | {"name": "x", "task": "order_execution", "agent": "eiie"}

    response = ada.post(CREATE, data)

    assert "agent" in form_of(response).errors
    assert not Strategy.objects.exists()


# ------------------------------------------------------------------------------------------------ edit

def _create(client, user, dataset, **values) -> Strategy:
    client.force_login(user)
    data = shown_form(client, CREATE) | {"name": "s", "dataset": dataset.pk} | values
    assert client.post(CREATE, data).status_code == 302
    return Strategy.objects.get(name=data["name"])


def test_the_edit_form_shows_the_stored_values_and_saves_changes(ada, user, dataset):
    strategy = _create(ada, user, dataset, name="editable", env__window="15")
    edit = reverse("strategies:edit", args=[strategy.pk])

    data = shown_form(ada, edit)
    assert data["env__window"] == "15" and data["preset"] == ""

    response = ada.post(edit, data | {"description": "shorter window", "env__window": "5"})

    assert response.status_code == 302
    strategy.refresh_from_db()
    assert strategy.description == "shorter window"
    assert strategy.config["env"]["window"] == 5


def test_editing_with_invalid_values_changes_nothing(ada, user, dataset):
    strategy = _create(ada, user, dataset, name="kept", env__window="15")
    edit = reverse("strategies:edit", args=[strategy.pk])

    response = ada.post(edit, shown_form(ada, edit) | {"name": "renamed", "trainer__seed": "-1"})

    assert response.status_code == 200
    assert form_of(response).errors["trainer__seed"] == ["Input should be greater than or equal to 0"]
    strategy.refresh_from_db()
    assert strategy.name == "kept" and strategy.config["env"]["window"] == 15


def test_editing_to_another_pair_keeps_the_split(ada, user, dataset):
    strategy = _create(ada, user, dataset, name="moving")
    strategy.config["split"]["ratios"] = [0.6, 0.2, 0.2]
    strategy.save()
    edit = reverse("strategies:edit", args=[strategy.pk])

    data = shown_form(ada, edit, task="algorithmic_trading", agent="dqn")
    response = ada.post(edit, data)

    assert response.status_code == 302
    strategy.refresh_from_db()
    assert (strategy.task, strategy.agent) == ("algorithmic_trading", "dqn")
    assert strategy.config["split"]["ratios"] == [0.6, 0.2, 0.2]


# --------------------------------------------------------------------------------------------- actions

def test_train_submits_a_training_session(ada, strategy):
    response = ada.post(reverse("strategies:train", args=[strategy.pk]))

    session = StrategySession.objects.get(strategy=strategy)
    assert response.status_code == 302 and response.url == reverse("sessions:detail", args=[session.pk])
    assert session.session_type == "training"
    assert session.status == "queued"


def test_train_beyond_the_quota_of_active_sessions_comes_back_as_a_message(ada, strategy, make_session, settings):
    for _ in range(settings.TRADEMASTER["MAX_SESSIONS_PER_USER"]):
        make_session(S.RUNNING)

    response = ada.post(reverse("strategies:train", args=[strategy.pk]))

    assert response.status_code == 302 and response.url == reverse("strategies:detail", args=[strategy.pk])
    limit = settings.TRADEMASTER["MAX_SESSIONS_PER_USER"]
    expected = TOO_MANY_SESSIONS.format(owner="ada", count=limit, limit=limit)
    assert [str(m) for m in get_messages(response.wsgi_request)] == [expected]
    assert StrategySession.objects.count() == settings.TRADEMASTER["MAX_SESSIONS_PER_USER"]


def test_creating_needs_the_csrf_token(user, dataset):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    response = browser.post(CREATE, {"name": "x"})

    assert response.status_code == 403
    assert not Strategy.objects.exists()


def test_delete_removes_the_strategy(ada, strategy):
    response = ada.post(reverse("strategies:delete", args=[strategy.pk]))

    assert response.status_code == 302 and response.url == reverse("strategies:list")
    assert not Strategy.objects.exists()
