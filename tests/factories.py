from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from connectors.models import CatalogEntry, Connector, ConnectorStatus, DeploymentMode, Transport


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    first_name = "Test"
    last_name = factory.LazyAttribute(lambda o: o.username.title())


class AdminFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    is_staff = True
    is_superuser = True


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"group{n}")


class ConnectorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connector

    name = factory.Sequence(lambda n: f"Connector {n}")
    slug = factory.Sequence(lambda n: f"connector-{n}")
    status = ConnectorStatus.ACTIVE
    deployment_mode = DeploymentMode.HOSTED
    transport = Transport.STREAMING_HTTP
    url = "http://127.0.0.1:9/mcp"


class LocalConnectorFactory(ConnectorFactory):
    deployment_mode = DeploymentMode.LOCAL
    transport = Transport.STDIO
    url = "python"
    args = factory.LazyFunction(lambda: ["-m", "connectors.demo_server"])


class CatalogEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CatalogEntry

    slug = factory.Sequence(lambda n: f"entry-{n}")
    name = factory.Sequence(lambda n: f"Entry {n}")
    deployment_mode = DeploymentMode.LOCAL
    transport = Transport.STDIO
    url = "uvx"
    args = factory.LazyFunction(lambda: ["mcp-server-time"])
