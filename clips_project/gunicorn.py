"""gunicorn settings: `gunicorn -c clips_project/gunicorn.py clips_project.wsgi`."""

import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Each instance its own control socket (gunicornc): the default is one path per
# user, ~/.gunicorn/gunicorn.ctl, which two instances on a host would share.
_own_control_dir = not os.environ.get("GUNICORN_CONTROL_SOCKET")
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or os.path.join(
    tempfile.mkdtemp(prefix="clips-gunicorn-"), "gunicorn.ctl"
)
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
    if _own_control_dir:
        shutil.rmtree(os.path.dirname(control_socket), ignore_errors=True)
