"""The service's health: the probes /healthz and /readyz, Prometheus' /metrics,
and what a request gets while the database cannot be reached.

The probes and /metrics are answered by a middleware placed before
SecurityMiddleware and CommonMiddleware, so they work whatever ALLOWED_HOSTS and
SECURE_SSL_REDIRECT say: Docker asks 127.0.0.1, Kubernetes a pod IP, and
Prometheus each replica by the address its DNS discovery found, over plain http,
with a Host that production does not list. They read nothing a client sends but
the path, build no URL from the Host, never reach a view (so no rate limit applies
and the dashboard's per-view request rates never count them), and the probes say
only which check failed and the library's short reason.
"""

import asyncio
import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.cache import add_never_cache_headers
from django.utils.log import log_response
from health_check.base import HealthCheck
from health_check.checks import Database, Storage
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable
from redis.asyncio import Redis as RedisClient

from clips import metrics
from clips.api.errors import error_body, is_api, json_error, method_not_allowed
from clips.files import storage
from clips.ops.prometheus import metrics_export

# Seconds a client is asked to wait before retrying while the database is down.
RETRY_AFTER_SECONDS = 5


@dataclasses.dataclass
class MediaStorage(Storage):
    """django-health-check's Storage check (save, read back and delete a file).

    An OSError (MEDIA_ROOT missing its permissions, or not a directory) or an S3
    error (the bucket refuses the keys, or does not answer) means the storage is
    unavailable, not a bug in the check: named as such, without the traceback
    the library logs for unexpected exceptions, and without the path or bucket.
    """

    def run(self) -> None:
        try:
            super().run()
        except storage.STORAGE_ERRORS as exc:
            raise ServiceUnavailable(storage.error_reason(exc)) from exc


def readiness_checks() -> dict[str, HealthCheck]:
    """/readyz: the database answers a query, media storage can be written and
    read, and the ingest's broker (Redis) answers a ping, when there is one."""
    checks: dict[str, HealthCheck] = {
        "database": Database(),
        "storage": MediaStorage(),
    }
    broker = settings.CELERY_BROKER_URL
    if urlsplit(broker).scheme in ("redis", "rediss"):
        checks["broker"] = Redis(
            client_factory=lambda: RedisClient.from_url(
                broker, socket_connect_timeout=1, socket_timeout=2
            )
        )
    return checks


# A broker away degrades the service, it does not stop it: uploads are taken and
# their ingest owed (clips.ingest.outbox), pages and streams are served. /readyz
# says so with a 200, so that no orchestrator takes the replicas out for it.
DEGRADING_CHECKS = {"broker"}


def readiness_failures(checks: dict[str, HealthCheck]) -> dict[str, str]:
    """Run the checks side by side; each failed check's name and message.

    get_result() gives every check its timeout (5 s). The checks' threads are not
    waited for on the way out, so a database that hangs cannot hold the probe.
    """
    executor = ThreadPoolExecutor(max_workers=len(checks))

    async def run_all():
        return await asyncio.gather(
            *(check.get_result(executor) for check in checks.values())
        )

    try:
        results = asyncio.run(run_all())
    finally:
        executor.shutdown(wait=False)
    return {
        name: str(result.error)
        for name, result in zip(checks, results, strict=True)
        if result.error
    }


def _healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. Touches neither the database nor storage."""
    return JsonResponse({"status": "ok"})


def _readyz(request: HttpRequest) -> HttpResponse:
    checks = readiness_checks()
    failures = readiness_failures(checks)
    states = {name: failures.get(name, "ok") for name in checks}
    if not failures:
        return JsonResponse({"status": "ok", "checks": states})
    if failures.keys() <= DEGRADING_CHECKS:
        response = JsonResponse({"status": "degraded", "checks": states})
    else:
        body = error_body(code="not_ready", detail=f"Not ready: {', '.join(failures)}.")
        response = JsonResponse({**body, "checks": states}, status=503)
    # One line per failed probe; django.request does not log it again.
    log_response(
        "Not ready: %s: %s" if response.status_code == 503 else "Degraded: %s: %s",
        request.path,
        "; ".join(f"{name}: {message}" for name, message in failures.items()),
        response=response,
        request=request,
        level="warning",
    )
    return response


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": _healthz,
    "/readyz": _readyz,
    # Every gunicorn worker's figures (PROMETHEUS_MULTIPROC_DIR), summed, and
    # the ingest queue's length.
    "/metrics": metrics_export,
}


class ProbeMiddleware:
    """Answers the PROBES before any other middleware sees the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed(request)
        response = probe(request)
        add_never_cache_headers(response)
        # CommonMiddleware, which would set it, never sees the probes.
        response.headers["Content-Length"] = str(len(response.content))
        return response


def database_unreachable(exc: Exception) -> bool:
    """Whether exc means the database cannot be reached: down, or the link lost.

    OperationalError and InterfaceError are also raised for a deadlock, a statement
    timeout or SQLite's "no such table"; those leave the connection usable and stay
    500s with their traceback, as IntegrityError and every other DatabaseError do.
    """
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    return connection.connection is None or not connection.is_usable()


class DatabaseUnavailableMiddleware:
    """503 and Retry-After instead of a 500 and two tracebacks per request.

    JSON (the API's error shape) under /api/, a short page elsewhere; one log line
    and clips_database_unavailable_total + 1 per request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if not database_unreachable(exception):
            return None
        if is_api(request):
            response = json_error(
                503,
                code="database_unavailable",
                detail="The database is unavailable; try again shortly.",
            )
        else:
            response = HttpResponse(render_to_string("503.html"), status=503)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        add_never_cache_headers(response)
        metrics.DATABASE_UNAVAILABLE.inc()
        # The reason on one line (psycopg's spans several); log_response marks the
        # response as logged, so django.request does not add a second line.
        log_response(
            "Database unavailable: %s %s: %s: %s",
            request.method,
            request.path,
            type(exception).__name__,
            " ".join(str(exception).split()),
            response=response,
            request=request,
        )
        return response
