"""A config that cannot train is refused when it is saved, naming the field and the limit, in the API
and the form alike; every problem in one round."""
import pytest
from django.urls import reverse

from engine.preflight import NO_SUCH_DEVICE, TOO_FEW_ASSETS
from strategies.models import Strategy
from strategies.services import dataset_import
from tests.platform.html_forms import shown

pytestmark = pytest.mark.django_db

PM = "portfolio_management"


@pytest.fixture
def as_user(client, user):
    client.force_login(user)
    return client


def create(client, dataset, **params):
    body = {"name": "s", "task": PM, "agent": "ppo", "dataset": dataset.pk, "params": params}
    return client.post("/api/strategies", body, content_type="application/json")


def fields(response) -> dict:
    assert response.status_code == 422, response.content
    return {".".join(map(str, f["loc"])): f["message"] for f in response.json()["error"]["fields"]}


def test_a_window_longer_than_a_split_names_the_window_and_the_bars(as_user, dataset):
    problems = fields(create(as_user, dataset, env={"window": 100_000}))

    # The built-in market has 1,500 bars: 1,050 train, 225 valid, 225 test; the shortest is the limit.
    assert problems["env.window"] == "window 100000 is longer than the valid split (225 bars)"
    assert not Strategy.objects.exists()


def test_split_dates_outside_the_data_name_the_split_and_the_datas_dates(as_user, dataset):
    split = {"train": ["1990-01-01", "1990-12-31"], "valid": ["1991-01-01", "1991-06-30"],
             "test": ["1991-07-01", "1991-12-31"]}

    message = fields(create(as_user, dataset, split=split))["split"]

    assert message.startswith("train split has no bars") and "it spans 2015-01-02..2020-10-01" in message


def test_a_device_this_machine_lacks_is_refused_on_the_device(as_user, dataset):
    problems = fields(create(as_user, dataset, trainer={"device": "cuda:7"}))

    assert problems["trainer.device"] == NO_SUCH_DEVICE.format(device="cuda:7", have="no CUDA device")


def test_a_network_too_large_for_the_memory_names_its_size(as_user, dataset):
    message = fields(create(as_user, dataset, agent_params={"hidden": [100_000, 100_000]}))["agent_params.hidden"]

    assert "parameters" in message and "GB of memory" in message


def test_every_problem_comes_in_one_round(as_user, dataset):
    problems = fields(create(as_user, dataset, env={"window": 100_000}, trainer={"device": "cuda:7"}))

    assert set(problems) == {"env.window", "trainer.device"}


def test_a_portfolio_needs_several_assets(as_user, btc_csv):
    btc = dataset_import(path=btc_csv, name="btc")

    problems = fields(as_user.post("/api/strategies", {"name": "s", "task": PM, "agent": "ppo", "dataset": btc.pk},
                                   content_type="application/json"))

    assert problems["dataset"] == TOO_FEW_ASSETS.format(task="Portfolio management", need=2, have=1, tickers="BTC")


def test_the_new_strategy_form_offers_a_dataset_that_fits_its_task(as_user, btc_csv, dataset):
    dataset_import(path=btc_csv, name="btc")  # first by name, one asset

    form = shown(as_user.get(reverse("strategies:create")), "strategy-form")

    assert form.values["task"] == PM and form.values["dataset"] == str(dataset.pk)


def test_the_form_shows_every_sections_problems_in_one_round(as_user, dataset):
    page = as_user.get(reverse("strategies:create"))
    data = shown(page, "strategy-form").values | {
        "name": "s", "env__window": "100000", "trainer__device": "cuda:7", "agent_params__hidden": "64, x",
    }

    form = shown(as_user.post(reverse("strategies:create"), data), "strategy-form")

    assert set(form.errors) >= {"env__window", "trainer__device", "agent_params__hidden"}
    assert not Strategy.objects.exists()
