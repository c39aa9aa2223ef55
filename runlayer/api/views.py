from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import ApiKey, UserSecret
from ..secrets import user_secret_delete, user_secret_set
from ..services import api_key_create, api_key_revoke
from .serializers import (
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    MeSerializer,
    NewApiKeySerializer,
    UserSecretSerializer,
    UserSecretWriteSerializer,
)


class MeView(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's own API keys. A key is shown once, in the response that creates it."""

    serializer_class = ApiKeySerializer
    queryset = ApiKey.objects.none()  # for the schema; get_queryset scopes to the caller

    def get_queryset(self):
        return ApiKey.objects.filter(user=self.request.user)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: NewApiKeySerializer})
    def create(self, request):
        body = ApiKeyCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        expires_at = body.validated_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise ValidationError({"expires_at": "must be in the future"})
        new = api_key_create(user=request.user, name=body.validated_data["name"], expires_at=expires_at)
        data = ApiKeySerializer(new.api_key).data
        data["key"] = new.key
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        api_key_revoke(api_key=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserSecretViewSet(viewsets.ViewSet):
    """The caller's own secrets for connector header placeholders (``{{ user.secret.NAME }}``). Write-only values."""

    lookup_field = "name"
    lookup_value_regex = "[A-Za-z_][A-Za-z0-9_]*"

    @extend_schema(responses=UserSecretSerializer(many=True))
    def list(self, request):
        secrets = UserSecret.objects.filter(user=request.user).order_by("name")
        return Response({"data": UserSecretSerializer(secrets, many=True).data, "count": secrets.count()})

    @extend_schema(request=UserSecretWriteSerializer, responses=UserSecretSerializer)
    def update(self, request, name=None):
        body = UserSecretWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        secret = user_secret_set(user=request.user, name=name, value=body.validated_data["value"])
        return Response(UserSecretSerializer(secret).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, name=None):
        if not user_secret_delete(user=request.user, name=name):
            return Response({"detail": f"you have no secret named {name!r}"}, status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)
