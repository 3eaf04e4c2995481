"""The API's one error shape, documented on every operation: {"error": {"code", "message", "fields"}}."""
from ninja import Field, Schema
from pydantic import ConfigDict


class InputSchema(Schema):
    """A request body. A field the API does not know is refused (422 on it), not ignored: a misspelt
    "descripton" must not answer 200 and change nothing."""

    model_config = ConfigDict(extra="forbid")


class FieldError(Schema):
    loc: list[str | int] = Field(description='Path of the field, e.g. ["env", "window"] or ["name"]')
    message: str


class ErrorBody(Schema):
    code: str = Field(description="validation_error, invalid_data, unauthorized, forbidden, not_found, conflict, ...")
    message: str
    fields: list[FieldError] = Field(default_factory=list)


class ErrorOut(Schema):
    error: ErrorBody


# The error responses every operation documents; trademaster_web.api produces them. 413: a body over
# DATA_UPLOAD_MAX_MEMORY_SIZE, which any operation may be sent.
ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 413: ErrorOut, 422: ErrorOut}
