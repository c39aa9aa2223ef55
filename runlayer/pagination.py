from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response


def _non_negative_int(raw: str | None, *, name: str, default: int, maximum: int | None = None) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: f"must be a whole number, got {raw!r}"}) from None
    if value < 0:
        raise ValidationError({name: "must not be negative"})
    if maximum is not None and value > maximum:
        raise ValidationError({name: f"must be at most {maximum}"})
    return value


class SkipLimitPagination(BasePagination):
    """The contract's list shape: ``?skip=M&limit=N`` → ``{"data": [...], "count": total}``."""

    default_limit = 100
    max_limit = 2000

    def paginate_queryset(self, queryset, request, view=None):
        self.limit = _non_negative_int(
            request.query_params.get("limit"), name="limit", default=self.default_limit, maximum=self.max_limit
        )
        self.skip = _non_negative_int(request.query_params.get("skip"), name="skip", default=0)
        self.count = queryset.count()
        return list(queryset[self.skip : self.skip + self.limit])

    def get_paginated_response(self, data):
        return Response({"data": data, "count": self.count})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["data", "count"],
            "properties": {"data": schema, "count": {"type": "integer"}},
        }

    def get_schema_operation_parameters(self, view):
        return [
            {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "maximum": 2000}},
            {"name": "skip", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
        ]
