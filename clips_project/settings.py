"""Settings for the Clips service.

Every environment variable the service reads is read here, and only here.
With nothing set but DEBUG=1 it runs on SQLite and local media with a development
SECRET_KEY; production (DEBUG=0) must name its database and provide the secrets.
"""

import datetime
import os
from pathlib import Path

import dj_database_url
from corsheaders.defaults import default_headers as cors_default_headers
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def envfloat(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def envlist(name: str, default: str = "") -> list[str]:
    return [
        item.strip()
        for item in os.environ.get(name, default).split(",")
        if item.strip()
    ]


DEBUG = envbool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-development-only-key"  # noqa: S105 (DEBUG only)

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "axes",
    "clips",
]

# django-prometheus times each request between its Before (first) and After (last)
# middleware; /metrics sums every gunicorn worker (PROMETHEUS_MULTIPROC_DIR).
# /healthz and /readyz are answered before SecurityMiddleware and CommonMiddleware,
# whatever the Host or scheme; a database outage gives 503s, not 500s
# (clips/ops/health.py).
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "clips.ops.health.ProbeMiddleware",
    # Before anything else that can answer (whitenoise, CommonMiddleware), as it asks.
    "corsheaders.middleware.CorsMiddleware",
    "clips.ops.health.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into its answer, and
    # django-prometheus counts that 429 among the responses by status.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "clips_project.urls"
WSGI_APPLICATION = "clips_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# The service description's names; the password may be empty (trust, peer, .pgpass).
POSTGRES_VARIABLES = (
    "POSTGRES_SERVER",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "POSTGRES_PORT",
)
POSTGRES_REQUIRED = ("POSTGRES_SERVER", "POSTGRES_USER", "POSTGRES_DB")


def database_from_env() -> dict:
    """DATABASE_URL if set, else the POSTGRES_* variables, else (DEBUG only) SQLite."""
    if url := os.environ.get("DATABASE_URL"):
        return dict(dj_database_url.parse(url))
    postgres = {name: os.environ.get(name, "") for name in POSTGRES_VARIABLES}
    if not any(postgres.values()):
        # Production names its database rather than silently writing a local file.
        if not DEBUG:
            raise ImproperlyConfigured(
                "No database configured: set DATABASE_URL, or POSTGRES_SERVER, "
                "POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB (and POSTGRES_PORT, "
                "default 5432). The SQLite file db.sqlite3 is used only with DEBUG=1."
            )
        return dict(dj_database_url.parse(f"sqlite:///{BASE_DIR / 'db.sqlite3'}"))
    if missing := [name for name in POSTGRES_REQUIRED if not postgres[name]]:
        given = ", ".join(name for name, value in postgres.items() if value)
        raise ImproperlyConfigured(
            f"{', '.join(missing)} must be set along with the other POSTGRES_* "
            f"variables (set: {given})."
        )
    # Handed to psycopg as they are: no URL to quote, so any character works.
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": postgres["POSTGRES_SERVER"],
        "PORT": envint("POSTGRES_PORT", 5432),
        "NAME": postgres["POSTGRES_DB"],
        "USER": postgres["POSTGRES_USER"],
        "PASSWORD": postgres["POSTGRES_PASSWORD"],
    }


DATABASES = {
    "default": database_from_env()
    | {"CONN_MAX_AGE": envint("DATABASE_CONN_MAX_AGE", 60), "CONN_HEALTH_CHECKS": True}
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several threads or processes write to one file (runserver, gunicorn, the
    # ingest): take the write lock when a transaction begins and wait for it,
    # rather than fail with "database is locked" when a read turns into a write.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
# django-prometheus' wrappers of the same backends count queries and their errors.
DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
    "django.db.backends.", "django_prometheus.db.backends."
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First, so that a locked-out client is refused before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# The admin's sign-in (django-axes, clips/logins.py): AXES_FAILURE_LIMIT failed
# passwords from one client address (as NUM_PROXIES says, like the rate limits), with
# whatever usernames, lock that address out until AXES_COOLOFF_MINUTES after its last
# try; the failures of one username from it are among them. Not per username alone:
# that would let anyone lock a curator out from anywhere. Kept in the database, so the
# lockout holds for every worker and replica, and while Redis is down. API tokens
# never sign in, so a locked-out curator's token still works.
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=envint("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_CLIENT_IP_CALLABLE = "clips.logins.login_address"
AXES_LOCKOUT_CALLABLE = "clips.logins.login_locked_out"
# Successful sign-ins are not logged with their address (the user's last_login is).
AXES_DISABLE_ACCESS_LOG = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")
# Static files (admin, docs) are served by whitenoise; media only by the stream view.
# Media on disk is Django's FileSystemStorage, but a write that fails (disk full,
# read-only) leaves no partial file (clips/files/storage.py).
STORAGES = {
    "default": {"BACKEND": "clips.files.storage.DiskStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
FIXTURE_DIRS = [BASE_DIR / "fixtures"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or BASE_DIR / "media")
# Seconds a presigned URL of the bucket is valid: nginx (or, with CLIPS_S3_REDIRECT,
# the client) starts its request within them.
CLIPS_S3_URL_SECONDS = envint("CLIPS_S3_URL_SECONDS", 60)


def bucket_storage_from_env() -> dict | None:
    """The S3 storage that AWS_STORAGE_BUCKET_NAME names, or None: local MEDIA_ROOT.

    Audio, renditions and waveforms in an S3-compatible bucket (django-storages),
    so that replicas on several machines share them.
    """
    bucket = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
    if not bucket:
        return None
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            # Empty: AWS itself; MinIO, moto, Ceph... name theirs.
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            # Empty: boto3's own chain (instance role, ~/.aws, AWS_* variables).
            "access_key": os.environ.get("AWS_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
            # bucket.host names need DNS per bucket; MinIO and moto serve /bucket/key.
            "addressing_style": os.environ.get("AWS_S3_ADDRESSING_STYLE") or "path",
            "signature_version": "s3v4",
            # Private objects, read through presigned URLs only; no ACLs (buckets
            # with object ownership enforced refuse them).
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": CLIPS_S3_URL_SECONDS,
            # A name taken gets a suffix, as on disk: never another clip's audio.
            "file_overwrite": False,
        },
    }


STORAGES["default"] = bucket_storage_from_env() or STORAGES["default"]
# Behind nginx (deploy/nginx/), the stream view answers with X-Accel-Redirect and
# nginx sends the audio file (from disk, or proxied from the bucket's presigned
# URL); off, Python sends it (make run, tests).
CLIPS_STREAM_OFFLOAD = envbool("CLIPS_STREAM_OFFLOAD", False)
# Behind nginx, the same stream request of the same listener is answered again by
# nginx alone (its stream decisions' cache) for at most this many seconds, and never
# past the listener's listen window, so plays stay exact; 0: Django decides each.
CLIPS_STREAM_REPEAT_SECONDS = envint("CLIPS_STREAM_REPEAT_SECONDS", 10)
# With the bucket: answer a stream with a 302 to its presigned URL instead (a CDN,
# or clients that may reach the bucket themselves). Django still decides first.
CLIPS_S3_REDIRECT = envbool("CLIPS_S3_REDIRECT", False)
# Uploaded clips are capped; the stream view never reads a whole file into memory.
CLIPS_MAX_UPLOAD_BYTES = envint("CLIPS_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Remote audio_url clips are fetched only from public addresses
# (clips/remote/origin.py).
# ALLOWED_HOSTS, if set, limits origins to those hosts (".example.com": and below);
# ALLOWED_NETWORKS lets chosen private CIDRs through, e.g. an internal media server.
CLIPS_ORIGIN_ALLOWED_HOSTS = envlist("CLIPS_ORIGIN_ALLOWED_HOSTS")
CLIPS_ORIGIN_ALLOWED_NETWORKS = envlist("CLIPS_ORIGIN_ALLOWED_NETWORKS")
CLIPS_ORIGIN_MAX_BYTES = envint("CLIPS_ORIGIN_MAX_BYTES", 100 * 1024 * 1024)
# Timeouts in seconds for connecting to and reading from an origin.
CLIPS_ORIGIN_CONNECT_TIMEOUT = float(
    os.environ.get("CLIPS_ORIGIN_CONNECT_TIMEOUT", "3.05")
)
CLIPS_ORIGIN_READ_TIMEOUT = float(os.environ.get("CLIPS_ORIGIN_READ_TIMEOUT", "10"))

# Shared state: the rate limits and the anonymous catalogue cache. With REDIS_URL
# (redis://host:6379/0) every worker and replica shares one Redis; without it each
# process keeps its own in local memory, which is enough for `make run` (one process).
# The play rule's state is in the database, not here (clips/plays.py).
REDIS_URL = os.environ.get("REDIS_URL", "")
# Several deployments (or test runs) may share one Redis, each its own prefix: the
# cache's keys and the task queue's (CELERY_BROKER_TRANSPORT_OPTIONS) carry it.
CACHE_KEY_PREFIX = os.environ.get("CACHE_KEY_PREFIX", "clips")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        # A slow Redis costs a request at most these seconds (the URL's
        # ?socket_timeout=...&socket_connect_timeout=... win). An unreachable one
        # fails no request: limits let it through, answers come from the database.
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Celery (clips_project/celery.py, clips/tasks.py): the ingest of new audio. The broker
# is CELERY_BROKER_URL, else REDIS_URL; with neither, tasks run eagerly in the process
# that queues them (make run, tests), so nothing else needs to run.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or REDIS_URL
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# Results are written on the clip (status, reason), not in a result backend.
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged when done, so a worker that dies mid-ingest leaves it queued;
# one task at a time per worker process, since an ingest is seconds of CPU.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Seconds before one ingest is stopped: a 1-hour WAV takes well under a minute.
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 600)
# An ingest started longer ago than this is dead (its worker was killed): the time
# limit and a margin.
CLIPS_INGEST_DEAD_SECONDS = CELERY_TASK_TIME_LIMIT + max(
    5, CELERY_TASK_TIME_LIMIT // 10
)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": f"{CACHE_KEY_PREFIX}:celery:",
    # A task a dead worker had taken goes back to the queue after this many
    # seconds, not Redis's default hour.
    "visibility_timeout": CLIPS_INGEST_DEAD_SECONDS,
    # A broker that does not answer fails an upload's queueing in about a second,
    # not a request's whole time: the clip stays pending, owed (below).
    "socket_connect_timeout": 1,
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.1}
# Celery's own default, named here for /metrics, which reads the queue's length.
CELERY_TASK_DEFAULT_QUEUE = "celery"
# The outbox (clips/ingest/outbox.py): every CLIPS_OUTBOX_SECONDS Celery beat
# queues again each pending clip whose ingest was never taken by the broker (after
# that long), or was taken CLIPS_INGEST_STALLED_SECONDS ago and is not running; an
# audio whose ingest started CLIPS_INGEST_MAX_STARTS times without finishing fails.
CLIPS_OUTBOX_SECONDS = envint("CLIPS_OUTBOX_SECONDS", 60)
CLIPS_INGEST_STALLED_SECONDS = envint("CLIPS_INGEST_STALLED_SECONDS", 900)
CLIPS_INGEST_MAX_STARTS = envint("CLIPS_INGEST_MAX_STARTS", 3)
# A clip's preview (clips/ingest/preview.py): an excerpt of CLIPS_PREVIEW_SECONDS
# (its loudest window unless a curator chose the start; the whole clip when shorter),
# rendered at CLIPS_PREVIEW_LUFS integrated loudness with true peaks at most -1 dBTP.
# Changing either renders previews again only when asked (manage.py render_previews).
CLIPS_PREVIEW_SECONDS = envfloat("CLIPS_PREVIEW_SECONDS", 30.0)
CLIPS_PREVIEW_LUFS = envfloat("CLIPS_PREVIEW_LUFS", -16.0)
if not 5 <= CLIPS_PREVIEW_SECONDS <= 300:  # the excerpt is rendered in memory
    raise ImproperlyConfigured("CLIPS_PREVIEW_SECONDS must be from 5 to 300.")
if not -40 <= CLIPS_PREVIEW_LUFS <= -5:
    raise ImproperlyConfigured("CLIPS_PREVIEW_LUFS must be from -40 to -5.")
CELERY_BEAT_SCHEDULE = {
    "ingest-outbox-check": {
        "task": "clips.tasks.ingest_outbox_check",
        "schedule": CLIPS_OUTBOX_SECONDS,
        # A check nobody ran in time is dropped: the next one does the same.
        "options": {"expires": CLIPS_OUTBOX_SECONDS},
    },
}
# Where a Celery worker serves its own /metrics for Prometheus, "host:port"
# (clips_project/celery.py); empty: none (the tasks run elsewhere, or eagerly in the
# web process, whose /metrics then has them). Its pool's processes count the tasks,
# so it needs prometheus_client's PROMETHEUS_MULTIPROC_DIR too: without it the
# endpoint would show the parent's zeros.
WORKER_METRICS_BIND = os.environ.get("WORKER_METRICS_BIND", "")
if WORKER_METRICS_BIND and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    raise ImproperlyConfigured("WORKER_METRICS_BIND needs PROMETHEUS_MULTIPROC_DIR.")
# `loaddata sample_clips` runs each sample not ingested yet through the ingest, in its
# own process (about 1.5 s a sample here); 0 loads the rows and their audio only.
CLIPS_SAMPLES_INGEST = envbool("CLIPS_SAMPLES_INGEST", True)

# Seconds an anonymous catalogue answer (the list, a clip) is cached; 0 turns it off.
# See clips/caching.py and bench/results.md.
CLIPS_LIST_CACHE_SECONDS = envint("CLIPS_LIST_CACHE_SECONDS", 2)

# A play is a listen (clips/plays.py): one listener's requests for one clip within
# this many seconds count once.
CLIPS_LISTEN_WINDOW_SECONDS = envint("CLIPS_LISTEN_WINDOW_SECONDS", 30 * 60)
# Anonymous listeners are told apart by User-Agent, which a client chooses: at most
# this many count per client address (an IPv6 client's /64) and clip in a window,
# so a school's or an office's NAT counts at most this many too; 0 turns it off.
CLIPS_PLAYS_PER_ADDRESS = envint("CLIPS_PLAYS_PER_ADDRESS", 5)

# "N/period" (s, min, hour, day) per user or client address; empty turns a limit off.
# Counted in the default cache: one limit for every worker only with REDIS_URL.
CLIPS_THROTTLE_RATES = {
    "stream": os.environ.get("CLIPS_THROTTLE_STREAM", "300/min"),
    "clip_write": os.environ.get("CLIPS_THROTTLE_WRITE", "60/hour"),
    "listen": os.environ.get("CLIPS_THROTTLE_LISTEN", "60/min"),
}

# CORS (django-cors-headers) on the API and its schema only. Any origin may read
# (GET, HEAD, OPTIONS: the receiver in clips/api/cors.py); writes only from the origins
# listed here, e.g. "https://curators.example.com", sending a curator's Token.
# No cookies cross-origin, so never Access-Control-Allow-Credentials.
CORS_URLS_REGEX = r"^/(api/v1/(clips(/.*)?|schema)|openapi\.json)$"
CORS_ALLOWED_ORIGINS = envlist("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ("GET", "HEAD", "OPTIONS", "POST")
# Range for seeking; the conditional ones for players that revalidate a stream.
CORS_ALLOW_HEADERS = (
    *cors_default_headers,
    "range",
    "if-range",
    "if-none-match",
    "if-modified-since",
)
# Location of a new clip, Retry-After of a 429, and what a player needs to seek.
CORS_EXPOSE_HEADERS = (
    "Content-Range",
    "Accept-Ranges",
    "Content-Length",
    "ETag",
    "Location",
    "Retry-After",
)

REST_FRAMEWORK = {
    # Token first, so an anonymous write gets 401 with WWW-Authenticate, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Anyone may read; writing needs the model permission (clips.add_clip for POST).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.DjangoModelPermissionsOrAnonReadOnly",
    ],
    # Throttles take the client address from X-Forwarded-For only behind this
    # many trusted proxies; 0 means REMOTE_ADDR, which a client cannot forge.
    "NUM_PROXIES": envint("NUM_PROXIES", 0),
    # DRF's, but a JSON body nested too deeply is a 400, not a 500.
    "DEFAULT_PARSER_CLASSES": [
        "clips.api.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "clips.api.schema.ClipsAutoSchema",
    "EXCEPTION_HANDLER": "clips.api.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Clips API",
    "DESCRIPTION": "Browse, add and stream short audio clips.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc assets come from drf-spectacular-sidecar: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "clips.api.schema.add_stream_path",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # django-health-check logs each failed check with a traceback; /readyz logs
    # one line per failed probe instead. Its unexpected errors (ERROR) still show.
    "loggers": {"health_check": {"level": "ERROR"}},
}

# Behind a TLS-terminating proxy in production; all of these are on when DEBUG is off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
# The probes are answered before the redirect anyway; listed so they stay exempt.
SECURE_REDIRECT_EXEMPT = [r"^metrics$", r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
