"""The API lists' pages: ?limit= and ?offset=, as django-ninja's LimitOffsetPagination, with an
offset that stays inside the databases' integers (a larger one answered 500, "datatype mismatch")."""
from django.conf import settings
from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination

from common.ids import MAX_ID


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    class Input(Schema):
        limit: int = Field(settings.NINJA_PAGINATION_PER_PAGE, ge=1, le=settings.NINJA_PAGINATION_MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_ID)
