"""Streams through nginx from an S3 bucket against from local disk, side by side.

    .venv/bin/python bench/storage.py [--seconds 8] [--out bench/storage-results.md]

Starts, on loopback, moto's S3 server (the one the tests use; moto[server] from
requirements-dev.txt) and two sites, each with a PostgreSQL database of its own
(clips_storage_bench_disk, clips_storage_bench_bucket): gunicorn as shipped with
CLIPS_STREAM_OFFLOAD=1 behind the config of deploy/nginx (rendered by its
render.py), one keeping its audio in MEDIA_ROOT, the other in the bucket. Each gets
the same 5 MB WAV as an upload (clip_create, ingested in the process); wrk then
asks each nginx in turn for the original (`?format=original`), whole and by a
1 MB range, and asks the bucket itself for the same object by a presigned URL:
the S3 server's own ceiling. Prints a table and writes bench/storage-results.md.
Needs wrk and nginx. Everything it starts, it stops.
"""

import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import boto3
import requests

# bench/edge.py's run shape and nginx, bench/run.py's servers, wrk and report.
from edge import (
    HOST,
    ROOT,
    ROUNDS,
    WRK_CONNECTIONS,
    free_ports,
    rendered_nginx,
    started,
)
from run import (
    APP_ENV,
    MB,
    Row,
    Wrk,
    ensure_tools,
    environment,
    recreate_database,
    report_publish,
    running,
    table,
    write_wav,
    wrk,
    wrk_arguments,
)
from run import DATABASE_URL as RUN_DATABASE_URL

OUT = ROOT / "bench" / "out-storage"
RESULTS = ROOT / "bench" / "storage-results.md"
CLIP_BYTES = 5 * MB
SITES = ("disk", "bucket")
BUCKET = "clips-bench"
S3_KEYS = {
    "AWS_ACCESS_KEY_ID": "clips-bench",
    "AWS_SECRET_ACCESS_KEY": "clips-bench-secret",
    "AWS_S3_REGION_NAME": "us-east-1",
}
# What wrk asks for: (Range header or "", row).
MEASURES = [
    ("", f"whole {CLIP_BYTES // MB} MB original"),
    ("bytes=1000000-1999999", "1 MB range of it"),
]
COLUMNS = [
    "measure",
    "nginx from disk",
    "nginx from the bucket",
    "bucket / disk",
    "the S3 server itself",
    "notes",
]
# Run in the site's environment: the WAV (argv[1]) as a curator's upload; its id.
_UPLOAD = """
import sys
import django
django.setup()
from django.core.files.uploadedfile import UploadedFile
from django.core.management import call_command
from clips import services
call_command("migrate", verbosity=0)
with open(sys.argv[1], "rb") as audio:
    clip = services.clip_create(
        title="Storage benchmark", genre="other", duration=113,
        audio_file=UploadedFile(audio, name="bench.wav", content_type="audio/wav",
                                size=int(sys.argv[2])),
    )
clip.refresh_from_db()
assert clip.status == "ready", (clip.status, clip.failure_reason)
print(clip.pk, clip.audio_file.name)
"""


def database_url(site: str) -> str:
    return f"{RUN_DATABASE_URL.rsplit('/', 1)[0]}/clips_storage_bench_{site}"


def site_env(site: str, s3_url: str) -> dict[str, str]:
    """Production settings behind nginx, on the site's own database and storage."""
    env = {
        **APP_ENV,
        "DATABASE_URL": database_url(site),
        "MEDIA_ROOT": str(OUT / site / "media"),
        "CLIPS_STREAM_OFFLOAD": "1",
        "NUM_PROXIES": "1",
        "CLIPS_SAMPLES_INGEST": "0",
    }
    if site == "bucket":
        env |= S3_KEYS | {
            "AWS_STORAGE_BUCKET_NAME": BUCKET,
            "AWS_S3_ENDPOINT_URL": s3_url,
        }
    return env


def upload(site: str, env: dict[str, str], wav: Path) -> tuple[int, str]:
    """The WAV added to the site as a curator adds it: (clip id, its stored name)."""
    recreate_database(env["DATABASE_URL"])
    done = subprocess.run(
        [sys.executable, "-c", _UPLOAD, str(wav), str(CLIP_BYTES)],
        cwd=ROOT,
        env={**os.environ, **env, "DJANGO_SETTINGS_MODULE": "clips_project.settings"},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"bench: the upload to the {site} site failed:\n{done.stderr}")
    clip_id, name = done.stdout.split()
    print(f"bench: {site}: clip {clip_id} stored as {name}", flush=True)
    return int(clip_id), name


def s3_client(s3_url: str):
    return boto3.client(
        "s3",
        endpoint_url=s3_url,
        aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_KEYS["AWS_S3_REGION_NAME"],
    )


def measure(urls: dict[str, str], seconds: int) -> dict[str, dict[str, Wrk]]:
    """Each measure on each URL in turn, ROUNDS times; the best run of each."""
    best: dict[str, dict[str, Wrk]] = {}
    for range_header, label in MEASURES:
        print(f"bench: {label}", flush=True)
        best[label] = {}
        for _ in range(ROUNDS):
            for name, url in urls.items():
                run = wrk(url, WRK_CONNECTIONS, seconds, range_header=range_header)
                kept = best[label].get(name)
                if kept is None or run.megabytes_per_second > kept.megabytes_per_second:
                    best[label][name] = run
    return best


def _figure(run: Wrk) -> str:
    return (
        f"{run.megabytes_per_second:,.0f} MB/s ({run.requests_per_second:,.0f} req/s)"
    )


def rows(best: dict[str, dict[str, Wrk]]) -> list[Row]:
    lines = []
    for label, runs in best.items():
        disk, bucket, s3 = runs["disk"], runs["bucket"], runs["s3"]
        ratio = bucket.megabytes_per_second / disk.megabytes_per_second
        notes = (
            f"p50 {disk.p50_ms:.0f} / {bucket.p50_ms:.0f} / {s3.p50_ms:.0f} ms, "
            f"p99 {disk.p99_ms:.0f} / {bucket.p99_ms:.0f} / {s3.p99_ms:.0f} ms; "
            f"errors {disk.errors}, {bucket.errors}, {s3.errors}; nginx from the "
            f"bucket at {bucket.megabytes_per_second / s3.megabytes_per_second:.0%} "
            "of the S3 server's own rate"
        )
        lines.append(
            [
                f"{label}, {WRK_CONNECTIONS} conn.",
                _figure(disk),
                _figure(bucket),
                f"{ratio:.2f}",
                _figure(s3),
                notes,
            ]
        )
    return lines


def main() -> None:
    args = wrk_arguments(__doc__, RESULTS)
    ensure_tools()
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if moto is None:
        sys.exit("bench: needs moto_server (pip install -r requirements-dev.txt)")
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    wav = OUT / "bench.wav"
    write_wav(wav, CLIP_BYTES)
    s3_port, *ports = free_ports(1 + 2 * len(SITES))
    s3_url = f"http://{HOST}:{s3_port}"
    with ExitStack() as servers:
        servers.enter_context(
            running([moto, "-H", HOST, "-p", str(s3_port)], OUT / "moto.log")
        )
        started(f"{s3_url}/moto-api/")
        requests.put(f"{s3_url}/{BUCKET}", timeout=10).raise_for_status()
        urls = {}
        for site, app_port, nginx_port in zip(
            SITES, ports[::2], ports[1::2], strict=True
        ):
            env = site_env(site, s3_url)
            clip_id, name = upload(site, env, wav)
            command = [sys.executable, "-m", "gunicorn", "-c"]
            command += ["clips_project/gunicorn.py", "clips_project.wsgi"]
            env["GUNICORN_BIND"] = f"{HOST}:{app_port}"
            servers.enter_context(running(command, OUT / f"gunicorn-{site}.log", env))
            directory = OUT / site / "nginx"
            front = rendered_nginx(directory, nginx_port, [app_port], out=OUT / site)
            servers.enter_context(running(front, OUT / f"nginx-{site}.log"))
            base = f"http://{HOST}:{nginx_port}"
            urls[site] = f"{base}/api/v1/clips/{clip_id}/stream?format=original"
            started(f"{base}/api/v1/clips")
        urls["s3"] = s3_client(s3_url).generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": name}, ExpiresIn=3600
        )
        for url in urls.values():  # the same bytes from all three
            answer = requests.get(url, timeout=30)
            answer.raise_for_status()
            if answer.content != wav.read_bytes():
                sys.exit(f"bench: {url} sent other bytes than the upload's")
        described = environment() | {
            "Clips": "clips_project/gunicorn.py as shipped, CLIPS_STREAM_OFFLOAD=1, "
            "NUM_PROXIES=1, PostgreSQL on 127.0.0.1, DEBUG=0, behind deploy/nginx; "
            "disk: MEDIA_ROOT, sent by nginx's sendfile; bucket: django-storages' S3 "
            "backend, nginx fetching a presigned URL (CLIPS_S3_URL_SECONDS=60)",
            "S3 server": "moto's server mode (Python, werkzeug), in memory, "
            "on loopback",
            "load generator": f"wrk 4.1 (2 threads; better of {ROUNDS} alternating "
            "runs), on the same cores",
        }
        best = measure(urls, args.seconds)
    report_publish(args.out, described, table(COLUMNS, rows(best)))


if __name__ == "__main__":
    main()
