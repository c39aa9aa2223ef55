"""API errors: always JSON with a readable ``detail``; validation errors keep their per-field messages."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


def api_exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "message_dict"):
            exc = exceptions.ValidationError(exc.message_dict)
        else:
            exc = exceptions.ValidationError({"detail": exc.messages})
    response = exception_handler(exc, context)
    if response is not None:
        if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
            if "detail" not in response.data:
                response.data = {"detail": _summary(response.data), "errors": response.data}
        elif isinstance(exc, exceptions.ValidationError) and isinstance(response.data, list):
            response.data = {"detail": "; ".join(str(x) for x in response.data), "errors": response.data}
        return response
    if isinstance(exc, Http404):
        return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    # Anything else is a bug: log it with its traceback, answer without one.
    logger.exception("unhandled API error", exc_info=exc)
    return Response({"detail": "internal error"}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def _summary(errors: dict) -> str:
    parts = []
    for field, messages in errors.items():
        if isinstance(messages, (list, tuple)):
            text = "; ".join(str(m) for m in messages)
        else:
            text = str(messages)
        parts.append(f"{field}: {text}")
    return " | ".join(parts)
