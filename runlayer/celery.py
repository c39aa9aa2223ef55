"""The Celery application.

Broker: Redis when ``REDIS_URL`` is set, otherwise Kombu's SQLAlchemy transport on a SQLite file
(see settings), so the worker and the scheduler run without any server process.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "runlayer.settings")

app = Celery("runlayer")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
