"""The one NinjaAPI, under /api/ (OpenAPI at /api/openapi.json, docs at /api/docs).

Authentication: a bearer token (`Authorization: Bearer <token>`, see `manage.py create_api_token`) or
the login session (with Django's CSRF check on unsafe methods, as django-ninja does it). The user is
`request.auth` either way.

Every error is JSON of one shape:
    {"error": {"code": "validation_error", "message": "...", "fields": [{"loc": ["env", "window"], "message": "..."}]}}
with 401 (no or bad credentials), 403 (CSRF, or seen but not yours to change), 404 (missing, or
someone else's), 409 (name taken; a session's or deployment's status does not allow the action; too
many active sessions), 413 (a body over the limit), 422 (invalid input or data; `fields` says where),
503 (exchange keys cannot be sealed: the server has no TRADEMASTER_EXCHANGE_KEY).
"""
import json
import logging
from collections.abc import Iterable

import pydantic
from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
    ValidationError,
)
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as RequestValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer, SessionAuth

from accounts.services import api_token_authenticate
from common.errors import Conflict, DomainError, NotFound, Problem, problems_of
from common.text import unstorable
from engine.data import DataError
from risk.api import limits_router
from sessions.api import sessions_router, strategy_sessions_router
from sessions.services import IllegalTransition
from strategies.api import config_router, datasets_router, strategies_router
from trading.api import deployments_router, exchange_accounts_router
from trading.credentials import CredentialsUnavailable
from trading.risk_api import deployment_risk_router, kill_switch_router
from trading.services import IllegalDeploymentTransition

# Where Django logs its own 500s, so the same reporting (mail_admins, ...) sees the API's.
logger = logging.getLogger("django.request")

INVALID_INPUT = "invalid input: {problems}"
UNAUTHORIZED = "authentication required: log in, or send 'Authorization: Bearer <token>'"
SERVER_ERROR = "internal error; it has been logged"
NOT_JSON = "not valid JSON: {error}"
NOT_MULTIPART = "not a valid multipart/form-data body: {error}"
NOT_AN_OBJECT = "must be a JSON object, {{...}}, not {kind}"
TOO_LARGE = "the request body is larger than the {limit:,} bytes the API accepts"
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "validation_error",
    429: "throttled",
}
# The refusals of the services (common.errors), by status and error code. A new kind of refusal is
# one line here; a subclass is answered as its nearest listed base (TransitionConflict as
# IllegalTransition).
REFUSAL_STATUS: dict[type[Exception], tuple[int, str]] = {
    ValidationError: (422, "validation_error"),
    pydantic.ValidationError: (422, "validation_error"),  # the engine's RunConfig
    DataError: (422, "invalid_data"),
    PermissionDenied: (403, "forbidden"),
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    # The session's status does not allow it (pause a finished one, resume a running one): a
    # conflict with the state of the resource, not bad input.
    IllegalTransition: (409, "conflict"),
    IllegalDeploymentTransition: (409, "conflict"),
    # The server holds no key to seal exchange keys with (TRADEMASTER_EXCHANGE_KEY): nothing the
    # client can change in its request; the operators must set it.
    CredentialsUnavailable: (503, "unavailable"),
}


class BodyRefused(DomainError):
    """A request body that is no JSON object, or holds what cannot be stored (see common.text)."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(map(str, problems)))
        self._problems = problems

    def problems(self) -> list[Problem]:
        return self._problems


class JsonObjectParser(Parser):
    """Every body of this API is a JSON object. Python's json module also reads NaN and Infinity, and
    text with a NUL or a lone surrogate, which no column or config can hold: refused here, by path,
    before any schema or service sees them."""

    def parse_body(self, request: HttpRequest) -> dict:
        try:
            data = json.loads(request.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise BodyRefused([Problem(("body",), NOT_JSON.format(error=error))]) from None
        if not isinstance(data, dict):
            kind = "null" if data is None else type(data).__name__.replace("str", "a string").replace("list", "a list")
            raise BodyRefused([Problem(("body",), NOT_AN_OBJECT.format(kind=kind))])
        problems = list(unstorable(data))
        if problems:
            raise BodyRefused(problems)
        return data


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        return api_token_authenticate(plaintext=token)


class LoginSession(SessionAuth):
    """django-ninja's session auth, skipped when the request carries no session cookie.

    Its CSRF check runs before it looks at the session, so a token client (no cookies) whose token is
    wrong would get "403 CSRF check failed" instead of 401. Without the cookie there is no session to
    forge a request with, so there is nothing for CSRF to protect.
    """

    def __call__(self, request: HttpRequest):
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return None
        return super().__call__(request)


api = NinjaAPI(
    title="TradeMaster Web API",
    version="1",
    description=__doc__,
    # Bearer first: a token request needs no CSRF token even if the client also holds a session cookie.
    auth=[BearerToken(), LoginSession()],
    urls_namespace="api",
    parser=JsonObjectParser(),
)
api.add_router("/strategies", strategies_router)
api.add_router("/datasets", datasets_router)
api.add_router("/config", config_router)
# POST /api/strategies/{id}/sessions lives with the sessions: a second router under the same prefix.
api.add_router("/strategies", strategy_sessions_router, url_name_prefix="strategy_sessions")
api.add_router("/sessions", sessions_router)
api.add_router("/deployments", deployments_router)
api.add_router("/exchange-accounts", exchange_accounts_router)
# A deployment's limits and decisions live with the risk endpoints that find deployments (trading.risk_api).
api.add_router("/deployments", deployment_risk_router, url_name_prefix="deployment_risk")
api.add_router("/risk/limits", limits_router)
api.add_router("/risk/kill-switch", kill_switch_router)


def error_response(
    request: HttpRequest, status: int, message: str, *, code: str | None = None, fields: Iterable[dict] = ()
) -> HttpResponse:
    body = {"code": code or CODES.get(status, "error"), "message": message, "fields": list(fields)}
    return api.create_response(request, {"error": body}, status=status)


def _field(problem: Problem) -> dict:
    return {"loc": list(problem.loc), "message": problem.message}


def problems_response(request: HttpRequest, status: int, code: str, problems: list[Problem]) -> HttpResponse:
    """The one rendering of a list of problems: invalid input lists them all, by field, under one
    message; any other refusal says what it is, with the fields it is about."""
    if code == "validation_error":
        message = INVALID_INPUT.format(problems="; ".join(
            f"{'.'.join(map(str, p.loc)) or 'input'}: {p.message}" for p in problems
        ))
        return error_response(request, status, message, code=code, fields=map(_field, problems))
    message = " ".join(p.message for p in problems)
    return error_response(request, status, message, code=code, fields=[_field(p) for p in problems if p.loc])


def _on_refusal(request: HttpRequest, exc: Exception) -> HttpResponse:
    status, code = next(REFUSAL_STATUS[cls] for cls in type(exc).__mro__ if cls in REFUSAL_STATUS)
    return problems_response(request, status, code, problems_of(exc))


for _refusal in REFUSAL_STATUS:
    api.add_exception_handler(_refusal, _on_refusal)


def _request_loc(loc: tuple) -> tuple:
    # ninja prefixes the source and, for a body, the parameter name: ("body", "payload", "name").
    # Clients know neither; they sent {"name": ...}.
    if loc and loc[0] == "body":
        return loc[2:]
    return loc[1:]


@api.exception_handler(RequestValidationError)
def on_request_invalid(request: HttpRequest, exc: RequestValidationError) -> HttpResponse:
    problems = [Problem(tuple(_request_loc(tuple(e["loc"]))), e["msg"]) for e in exc.errors]
    return problems_response(request, 422, "validation_error", problems)


@api.exception_handler(Http404)
def on_http404(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request, 404, str(exc) or "not found")


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = error_response(request, 401, UNAUTHORIZED)
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # ninja wraps whatever the parser raises as "400 Cannot parse request body": the body's problems
    # are invalid input, by path, as any other.
    if isinstance(exc.__cause__, BodyRefused):
        return problems_response(request, 422, "validation_error", exc.__cause__.problems())
    # ninja's own: CSRF refused (403), throttled (429).
    return error_response(request, exc.status_code, str(exc))


@api.exception_handler(MultiPartParserError)
@api.exception_handler(TooManyFieldsSent)
@api.exception_handler(TooManyFilesSent)
def on_bad_multipart(request: HttpRequest, exc: Exception) -> HttpResponse:
    return problems_response(request, 422, "validation_error", [Problem(("body",), NOT_MULTIPART.format(error=exc))])


@api.exception_handler(RequestDataTooBig)
def on_too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error_response(request, 413, TOO_LARGE.format(limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE),
                          code="too_large")


@api.exception_handler(Exception)
def on_server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    # A bug: logged with its traceback for the operators, not shown to the client.
    logger.exception("unhandled error in %s %s", request.method, request.path)
    return error_response(request, 500, SERVER_ERROR, code="server_error")
