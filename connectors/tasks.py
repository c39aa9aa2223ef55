from __future__ import annotations

import logging

from celery import shared_task

from .capabilities import CapabilityFetchError
from .models import Connector, ConnectorStatus, DeploymentMode
from .services import connector_sync_capabilities

logger = logging.getLogger(__name__)


@shared_task(name="connectors.tasks.sync_capabilities")
def sync_capabilities(connector_id: str) -> dict[str, list[str]] | None:
    connector = Connector.objects.filter(pk=connector_id, deployment_mode=DeploymentMode.HOSTED).first()
    if connector is None:
        return None
    try:
        return connector_sync_capabilities(connector=connector).as_dict()
    except CapabilityFetchError as exc:
        logger.warning("capability sync of %s failed: %s", connector.name, exc)
        return None


@shared_task(name="connectors.tasks.sync_all_hosted_capabilities")
def sync_all_hosted_capabilities() -> int:
    """Queue a sync of every active hosted connector (run by the scheduler)."""
    ids = Connector.objects.filter(deployment_mode=DeploymentMode.HOSTED, status=ConnectorStatus.ACTIVE).values_list(
        "id", flat=True
    )
    count = 0
    for connector_id in ids:
        sync_capabilities.delay(str(connector_id))
        count += 1
    return count
