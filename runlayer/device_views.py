"""HTTP side of device login: the two JSON endpoints the CLI calls and the page where a user approves."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from .device import DeviceFlowError, device_authorize, device_decide, device_pending, device_token, normalize_user_code


def _json_body(request: HttpRequest) -> dict | None:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


@csrf_exempt
@require_POST
def authorize(request: HttpRequest) -> JsonResponse:
    body = _json_body(request)
    if body is None:
        return JsonResponse({"detail": "the body must be empty or a JSON object"}, status=400)
    name = body.get("device_name")
    if not isinstance(name, str) or not name.strip():
        agent = request.headers.get("user-agent", "CLI")[:40]
        name = f"{agent} at {request.META.get('REMOTE_ADDR', 'unknown address')}"
    grant = device_authorize(device_name=name, ip=request.META.get("REMOTE_ADDR"))
    auth = grant.authorization
    page = f"{settings.PUBLIC_URL}/device"
    return JsonResponse(
        {
            "device_code": grant.device_code,
            "user_code": auth.user_code,
            "verification_uri": page,
            "verification_uri_complete": f"{page}?code={auth.user_code}",
            "expires_in": settings.RUNLAYER_DEVICE_CODE_TTL_SECONDS,
            "interval": auth.interval,
        }
    )


@csrf_exempt
@require_POST
def token(request: HttpRequest) -> JsonResponse:
    body = _json_body(request)
    if body is None or "device_code" not in body:
        return JsonResponse({"detail": 'send {"device_code": "..."} as JSON'}, status=400)
    try:
        key = device_token(body["device_code"])
    except DeviceFlowError as exc:
        return JsonResponse({"detail": exc.detail}, status=exc.status)
    return JsonResponse({"api_key": key})


@login_required
@require_http_methods(["GET", "POST"])
def page(request: HttpRequest) -> HttpResponse:
    """Enter or confirm the code the terminal shows, then approve or deny."""
    code = normalize_user_code(request.POST.get("code") or request.GET.get("code") or "")
    context: dict = {"code": code, "pending": None, "message": "", "error": ""}
    if request.method == "POST":
        decision = request.POST.get("decision")
        if decision not in ("approve", "deny"):
            context["error"] = "Choose Approve or Deny."
        else:
            try:
                auth = device_decide(user_code=code, user=request.user, approve=decision == "approve")
            except DeviceFlowError as exc:
                context["error"] = exc.detail
                return render(request, "runlayer/device.html", context, status=exc.status if exc.status < 500 else 400)
            context["message"] = (
                f"Approved: {auth.device_name} is now signed in as {request.user.get_username()}. "
                "You can close this page."
                if decision == "approve"
                else f"Denied: {auth.device_name} was not signed in."
            )
            return render(request, "runlayer/device.html", context)
    if code:
        context["pending"] = device_pending(code)
        if context["pending"] is None:
            context["error"] = "No pending login has this code (it may have expired or been used)."
    return render(request, "runlayer/device.html", context)
