"""Runlayer settings, read from the environment.

Every setting has a default that is safe for a local, single-machine install (SQLite, an embedded
Celery broker on a SQLite file, DEBUG off unless asked for). Invalid values fail loudly at start-up
instead of being silently ignored: a typo in ``DATABASE_URL`` must not quietly fall back to SQLite.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    """The variable's value; unset and empty both mean the default (so a copied .env.example is harmless)."""
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DATA_DIR = Path(env_str("RUNLAYER_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)

_DEV_SECRET = "insecure-local-only-secret-key-change-me-for-any-shared-install"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET)
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")

PUBLIC_URL = env_str("RUNLAYER_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
_public = urlparse(PUBLIC_URL)
if _public.scheme not in ("http", "https") or not _public.hostname:
    raise ImproperlyConfigured(f"RUNLAYER_PUBLIC_URL must be an http(s) URL, got {PUBLIC_URL!r}")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", _public.hostname])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [f"{_public.scheme}://{_public.netloc}"])


def _encryption_key() -> bytes:
    """The Fernet key for secrets at rest.

    Without ``RUNLAYER_ENCRYPTION_KEY`` a key is derived from ``SECRET_KEY`` so a local install works
    out of the box; a shared install should set its own so rotating ``SECRET_KEY`` keeps secrets readable.
    """
    raw = env_str("RUNLAYER_ENCRYPTION_KEY")
    if not raw:
        return base64.urlsafe_b64encode(hashlib.sha256(f"runlayer-secrets:{SECRET_KEY}".encode()).digest())
    try:
        decoded = base64.urlsafe_b64decode(raw.encode())
    except ValueError:
        decoded = b""
    if len(decoded) != 32:
        raise ImproperlyConfigured(
            "RUNLAYER_ENCRYPTION_KEY must be a urlsafe-base64 Fernet key of 32 bytes "
            '(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")'
        )
    return raw.encode()


ENCRYPTION_KEY = _encryption_key()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
    "runlayer",
    "connectors",
    "policies",
    "audit",
    "analytics",
    "agents",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "runlayer.urls"
ASGI_APPLICATION = "runlayer.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "runlayer" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'runlayer.sqlite3'}")
try:
    _database = dj_database_url.parse(_database_url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0))
except ValueError as exc:  # unknown scheme
    raise ImproperlyConfigured(f"DATABASE_URL is not a usable database URL: {exc}") from None
if _database["ENGINE"].endswith("sqlite3"):
    # WAL lets the server, the worker and the audit writer read while one of them writes.
    _database.setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    _database["CONN_MAX_AGE"] = 0
DATABASES = {"default": _database}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL and urlparse(REDIS_URL).scheme not in ("redis", "rediss", "unix"):
    raise ImproperlyConfigured(f"REDIS_URL must be a redis:// or rediss:// URL, got {REDIS_URL!r}")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "runlayer"}}

# Celery: Redis when configured, otherwise Kombu's SQLAlchemy transport on a SQLite file, which needs no
# server process, so `worker` and `beat` run on a fresh machine.
CELERY_BROKER_URL = REDIS_URL or f"sqla+sqlite:///{DATA_DIR / 'celery-broker.sqlite3'}"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "sync-hosted-capabilities": {
        "task": "connectors.tasks.sync_all_hosted_capabilities",
        "schedule": env_int("RUNLAYER_CAPABILITY_SYNC_SECONDS", 3600, minimum=1),
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"

LOGIN_URL = "/accounts/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "runlayer.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "runlayer.pagination.SkipLimitPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "runlayer.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Runlayer API",
    "DESCRIPTION": "Control plane for MCP servers: connectors, access, policies and audit.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"GuardActionEnum": "policies.models.GuardAction"},
}

OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "SCOPES": {"mcp": "Use MCP connectors through the gateway", "api": "Use the Runlayer API"},
    "DEFAULT_SCOPES": ["mcp", "api"],
    "PKCE_REQUIRED": True,
    # RFC 9700 (OAuth 2.0 Security BCP): no implicit or password grants, S256 PKCE only, tokens in headers
    # only, hashed token storage, refresh-token replay revokes the family, `iss` in authorization responses.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    # MCP clients register themselves (RFC 7591) and then run the authorization-code flow with PKCE.
    "DCR_ENABLED": True,
    "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.dcr.AllowAllDCRPermission",),
    "OIDC_ISS_ENDPOINT": PUBLIC_URL,
    "OAUTH2_PROTECTED_RESOURCE_NAME": "Runlayer",
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https", "cursor", "vscode", "vscode-insiders"],
}
# django-oauth-toolkit's models, named so other apps (agents) can refer to them in migrations.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
# MCP clients are native apps that receive the authorization code on http://127.0.0.1:<port> (RFC 8252),
# so plain-http redirect URIs stay allowed; the check that warns about it is silenced on purpose.
SILENCED_SYSTEM_CHECKS = ["oauth2_provider.W008"]

# Hardening that holds whenever DEBUG is off; `manage.py check --deploy` stays clean behind TLS.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
_https = _public.scheme == "https"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _https)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _https)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if _https else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _https
SECURE_HSTS_PRELOAD = _https
if env_bool("USE_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Access-request events that send email (created: to admins; approved/rejected: to the requester).
RUNLAYER_NOTIFY_EMAIL_EVENTS = env_list(
    "RUNLAYER_NOTIFY_EMAIL_EVENTS", ["access_request_created", "access_request_approved", "access_request_rejected"]
)
# Webhook retries back off exponentially from this many seconds.
RUNLAYER_WEBHOOK_RETRY_BASE_SECONDS = env_int("RUNLAYER_WEBHOOK_RETRY_BASE_SECONDS", 10, minimum=0)
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "runlayer@localhost")

# Upstream MCP servers (gateway and capability sync): how long one call may take, how much an upstream may
# send back, and how many calls may be in flight to one upstream from one worker process.
RUNLAYER_UPSTREAM_TIMEOUT_SECONDS = env_int("RUNLAYER_UPSTREAM_TIMEOUT_SECONDS", 30, minimum=1)
RUNLAYER_MAX_RESPONSE_BYTES = env_int("RUNLAYER_MAX_RESPONSE_BYTES", 10 * 1024 * 1024, minimum=1024)
RUNLAYER_UPSTREAM_CONCURRENCY = env_int("RUNLAYER_UPSTREAM_CONCURRENCY", 64, minimum=1)
# Gateway requests per user (or agent account) per minute, across all workers; 0 turns the limit off.
RUNLAYER_RATE_LIMIT_PER_MINUTE = env_int("RUNLAYER_RATE_LIMIT_PER_MINUTE", 0, minimum=0)
# Browser origins allowed to call the MCP endpoints besides RUNLAYER_PUBLIC_URL's own (DNS-rebinding guard).
RUNLAYER_ALLOWED_ORIGINS = env_list("RUNLAYER_ALLOWED_ORIGINS", [])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "mcp": {"level": "WARNING"},
    },
}
# Device login (`runlayer login`): how long a code lives and how often the CLI may poll.
RUNLAYER_DEVICE_CODE_TTL_SECONDS = env_int("RUNLAYER_DEVICE_CODE_TTL_SECONDS", 600, minimum=30)
RUNLAYER_DEVICE_POLL_INTERVAL_SECONDS = env_int("RUNLAYER_DEVICE_POLL_INTERVAL_SECONDS", 5, minimum=1)
