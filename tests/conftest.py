from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from runlayer.services import api_key_create

from .factories import AdminFactory, UserFactory


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def outsider(db):
    """A user with nothing assigned, who must be refused."""
    return UserFactory(username="outsider")


@pytest.fixture
def admin_user(db):
    return AdminFactory()


@pytest.fixture
def client_for(db):
    """An API client that authenticates as the given user with a real API key."""

    def make(user, *, header: str = "x-runlayer-api-key") -> APIClient:
        key = api_key_create(user=user, name="test").key
        client = APIClient()
        if header == "bearer":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        else:
            client.credentials(HTTP_X_RUNLAYER_API_KEY=key)
        client.api_key = key
        return client

    return make


@pytest.fixture(autouse=True)
def fresh_process_caches():
    """In-process caches follow the shared version counter, which moves on commit; tests inside a rolled-back
    transaction never commit, so each test starts with empty caches instead."""
    import policies.cache
    import runlayer.cache_version

    policies.cache._current = None
    runlayer.cache_version._memo.clear()
    yield
