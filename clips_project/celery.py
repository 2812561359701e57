"""The Celery app, configured from Django settings (CELERY_*); tasks: clips/tasks.py.

With no broker configured (make run, tests) settings.py makes every task run eagerly,
in the process that queues it, so the embedded default needs nothing else running.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clips_project.settings")

app = Celery("clips")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
