"""gunicorn settings: `gunicorn -c clips_project/gunicorn.py clips_project.wsgi`."""

import multiprocessing
import os
import shutil
import tempfile

from clips_project.metrics_dir import metrics_dir_choose, metrics_dir_empty

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Each instance its own control socket (gunicornc): the default is one path per
# user, ~/.gunicorn/gunicorn.ctl, which two instances on a host would share.
_own_control_dir = not os.environ.get("GUNICORN_CONTROL_SOCKET")
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or os.path.join(
    tempfile.mkdtemp(prefix="clips-gunicorn-"), "gunicorn.ctl"
)
# Sized for API work only: nginx holds the listeners, sends the audio files and
# buffers whole requests and answers, so a thread is busy only while Django
# computes or waits on PostgreSQL (or relays a remote clip). A process per core
# (the GIL lets one thread of a process run Python at a time) and one more, so no
# core idles while a worker waits or restarts; two threads each overlap those
# waits. That is gunicorn's rule for sync workers (2 x cores + 1 requests at
# once) in half the processes: a worker is ~80 MB, and each thread keeps a
# database connection (CONN_MAX_AGE), 6 per replica on 2 cores rather than 20.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
# Longer than nginx's upstream keepalive_timeout (60 s), so that nginx, not
# gunicorn, closes an idle connection: else nginx may send a request on one that
# gunicorn is closing, and a POST that fails so is not retried (a 502).
keepalive = 75
# A worker is replaced after this many requests (a leak stays bounded). The app is
# loaded once, in the master, and each worker forks with it: loading it costs
# about 1.3 s of CPU, which a worker loading its own paid again every 2,000
# requests, 0.6 ms a request (docs/performance.md). Nothing is connected at
# import: database and Redis connections are opened by each worker when used.
preload_app = True
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
# Longest request line, e.g. a catalogue URL with a search: gunicorn's own maximum
# (the default 4094 answered a 4.5 KB line with an HTML 414). It equals nginx's
# default large_client_header_buffers (8k), so a URL the proxy passes fits here too;
# the API's parameters are bounded (search: 200 characters) far below it.
limit_request_line = 8190
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Metrics from every worker (clips_project/metrics_dir.py): set here, in the master,
# before the app loads; without one given, each start gets a fresh directory.
metrics_dir, _own_metrics_dir = metrics_dir_choose("clips-metrics-")


def on_starting(server) -> None:
    metrics_dir_empty(metrics_dir)


def child_exit(server, worker) -> None:
    """Drop a finished worker's live gauges; its counters stay in the sum."""
    from prometheus_client import multiprocess  # after the variable is set

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _own_metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    if _own_control_dir:
        shutil.rmtree(os.path.dirname(control_socket), ignore_errors=True)
