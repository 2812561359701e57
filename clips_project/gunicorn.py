"""gunicorn settings: `gunicorn -c clips_project/gunicorn.py clips_project.wsgi`."""

import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
# Threads let one worker stream to several slow listeners at once.
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
# Longest request line, e.g. a catalogue URL with a search: gunicorn's own maximum
# (the default 4094 answered a 4.5 KB line with an HTML 414). It equals nginx's
# default large_client_header_buffers (8k), so a URL the proxy passes fits here too;
# the API's parameters are bounded (search: 200 characters) far below it.
limit_request_line = 8190
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Metrics from every worker: prometheus_client writes each worker's values to files
# in PROMETHEUS_MULTIPROC_DIR and /metrics sums them. prometheus_client reads the
# variable when first imported, so it is set here, in the master, before the app
# loads; without one given, each start gets a fresh directory of its own.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="clips-metrics-")
metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def on_starting(server) -> None:
    """Start from zero: files left by an earlier run would be summed in."""
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    """Drop a finished worker's live gauges; its counters stay in the sum."""
    from prometheus_client import multiprocess  # after the variable is set

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _own_metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)
