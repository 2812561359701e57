"""The Celery app, configured from Django settings (CELERY_*); tasks: clips/tasks.py.

With no broker configured (make run, tests) settings.py makes every task run eagerly,
in the process that queues them, so the embedded default needs nothing else running.

A worker with WORKER_METRICS_BIND serves its own /metrics for Prometheus. Its
prefork children run the tasks, so their values are summed through
prometheus_client's multiprocess mode: the worker's environment names the
directory (PROMETHEUS_MULTIPROC_DIR), because Django's setup makes the first
metrics before any worker signal could choose one.
"""

import os
from pathlib import Path

from celery import Celery, signals
from django.conf import settings

from clips_project.metrics_dir import metrics_dir_empty

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clips_project.settings")

app = Celery("clips")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus_client opens its files there with the first metric it makes.
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)


@signals.celeryd_init.connect
def _metrics_dir_prepare(**kwargs) -> None:
    """In the worker's parent, before the pool forks: start the sums from zero.

    The parent's own files stay: they hold every series at 0 from the start.
    """
    if not settings.WORKER_METRICS_BIND:
        return
    metrics_dir_empty(
        Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]), keep_pid=os.getpid()
    )


@signals.worker_ready.connect
def _metrics_serve(**kwargs) -> None:
    """Once the pool runs; the server is a thread of the worker's parent."""
    if not settings.WORKER_METRICS_BIND:
        return
    from prometheus_client import start_http_server

    from clips.metrics import metrics_registry

    host, _, port = settings.WORKER_METRICS_BIND.rpartition(":")
    start_http_server(int(port), addr=host, registry=metrics_registry())


@signals.worker_ready.connect
def _work_dirs_sweep(**kwargs) -> None:
    """A worker killed mid-ingest left its work directory: a new one deletes it."""
    from clips.ingest.outbox import work_dirs_sweep

    work_dirs_sweep()
