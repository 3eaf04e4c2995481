"""Schemathesis over /api/openapi.json, through a real HTTP server, as an ordinary user with a token:
no input answers 5xx, and every answer matches the document (status, content type, headers, body).

CI-sized: a fixed seed and FUZZ_EXAMPLES examples per operation; bench/fuzz.py runs the same checks
longer (its figures are in the README).
"""
import pytest
import schemathesis
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from accounts.services import api_token_create
from sessions.models import SessionStatus
from sessions.services import session_transition
from tests.platform.session_helpers import tiny
from trademaster_web.api import api

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.once]

FUZZ_EXAMPLES = 25
# A request the document allows may still be refused for what it means: a dataset id that names no
# dataset, an agent that does not do the task, text a database cannot hold. That is a 422 with the
# field at fault, which the document says every operation may answer; any other refusal of valid
# input, every 5xx and every answer the document does not describe fail the test.
CONFIG = SchemathesisConfig.from_dict({
    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}},
})
schema = schemathesis.openapi.from_dict(api.get_openapi_schema(), config=CONFIG)


@pytest.fixture
def quant(django_user_model, make_strategy, builtin_dataset, runs_dir, settings):
    """An ordinary user with a strategy, a training session and a token; returns the headers. Exchange
    keys can be sealed, as on a server that `make run` started (without a key the API answers 503)."""
    settings.TRADEMASTER = {**settings.TRADEMASTER, "EXCHANGE_KEY": Fernet.generate_key().decode()}
    user = django_user_model.objects.create_user(username="fuzz", password="correct horse battery staple")
    strategy = make_strategy(user, epochs=1)
    session = strategy.sessions.create(session_type="training", config=tiny(1))
    session_transition(session=session, to=SessionStatus.QUEUED)
    _, token = api_token_create(user=user, name="fuzz")
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_the_api_answers_every_input_as_its_document_says(case, live_server, quant):
    case.call_and_validate(base_url=live_server.url, headers=quant)
