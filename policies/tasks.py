"""Notifications about access requests: email (Django's mail backend) and signed webhooks with retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import httpx
from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.utils import timezone

from .models import AccessRequest, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 5


def payload_for(request: AccessRequest, event: str) -> dict:
    return {
        "event": event,
        "access_request": {
            "id": str(request.id),
            "state": request.state,
            "requester": {"username": request.requester.get_username(), "email": request.requester.email},
            "connector": {"id": str(request.connector_id), "name": request.connector.name},
            "tools": request.tools,
            "reason": request.reason,
            "decision_note": request.decision_note,
            "created_at": request.created_at.isoformat(),
            "decided_at": request.decided_at.isoformat() if request.decided_at else None,
        },
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@shared_task(name="policies.tasks.notify_access_request")
def notify_access_request(request_id: str, event: str) -> None:
    request = AccessRequest.objects.select_related("requester", "connector").filter(pk=request_id).first()
    if request is None:
        return
    _email(request, event)
    payload = payload_for(request, event)
    for endpoint in WebhookEndpoint.objects.filter(enabled=True):
        if endpoint.wants(event):
            delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=event, payload=payload)
            deliver_webhook.delay(str(delivery.id))


def _email(request: AccessRequest, event: str) -> None:
    if event not in settings.RUNLAYER_NOTIFY_EMAIL_EVENTS:
        return
    who = request.requester.get_username()
    if event == "access_request_created":
        recipients = list(
            get_user_model()
            .objects.filter(is_staff=True, is_active=True)
            .exclude(email="")
            .values_list("email", flat=True)
        )
        subject = f"[Runlayer] {who} asks for {request.connector.name}"
        body = (
            f"{who} asks for access to {request.connector.name}.\n\nReason: {request.reason}\n\n"
            f"Review it at {settings.PUBLIC_URL}/admin/policies/accessrequest/{request.id}/change/"
        )
    else:
        recipients = [request.requester.email] if request.requester.email else []
        verdict = "approved" if event == "access_request_approved" else "rejected"
        subject = f"[Runlayer] Your request for {request.connector.name} was {verdict}"
        body = f"Your request for {request.connector.name} was {verdict}."
        if request.decision_note:
            body += f"\n\nNote: {request.decision_note}"
    if recipients:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)


@shared_task(name="policies.tasks.deliver_webhook", bind=True, max_retries=MAX_ATTEMPTS - 1)
def deliver_webhook(self, delivery_id: str) -> None:
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.status == "delivered":
        return
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "content-type": "application/json",
        "user-agent": "Runlayer-Webhook/1",
        "x-runlayer-event": delivery.event,
        "x-runlayer-delivery": str(delivery.id),
        "x-runlayer-timestamp": timestamp,
        "x-runlayer-signature": sign(delivery.endpoint.secret, timestamp, body),
    }
    delivery.attempts += 1
    try:
        response = httpx.post(delivery.endpoint.url, content=body, headers=headers, timeout=10)
        delivery.response_code = response.status_code
        ok = 200 <= response.status_code < 300
        delivery.last_error = "" if ok else f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        ok = False
        delivery.last_error = f"{type(exc).__name__}: {exc}"[:1000]
    if ok:
        delivery.status, delivery.delivered_at = "delivered", timezone.now()
        delivery.save()
        return
    final = delivery.attempts >= MAX_ATTEMPTS
    delivery.status = "failed" if final else "pending"
    delivery.save()
    if not final:
        raise self.retry(countdown=settings.RUNLAYER_WEBHOOK_RETRY_BASE_SECONDS * 2 ** (delivery.attempts - 1))
