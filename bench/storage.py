"""Streams through nginx from an S3 bucket against from local disk, side by side.

    .venv/bin/python bench/storage.py [--seconds 8] [--quick]
                                      [--out bench/storage-results.md]

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
from functools import partial
from pathlib import Path

import boto3
import requests
from harness import (
    BENCH,
    HOST,
    MB,
    ROOT,
    WRK_CONNECTIONS,
    Row,
    Wrk,
    app_env,
    best_of,
    command_line,
    database_url,
    edge_nginx,
    ensure_tools,
    environment,
    fresh_directory,
    gunicorn,
    publish,
    recreate_database,
    serve,
    table,
    write_wav,
    wrk,
)

OUT = BENCH / "out-storage"
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
UPLOAD = """
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


def site_env(site: str, s3_url: str) -> dict[str, str]:
    """Production settings behind nginx, on the site's own database and storage."""
    env = app_env(
        database_url(f"clips_storage_bench_{site}"),
        OUT / site / "media",
        CLIPS_STREAM_OFFLOAD="1",
        NUM_PROXIES="1",
        CLIPS_SAMPLES_INGEST="0",
    )
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
        [sys.executable, "-c", UPLOAD, str(wav), str(CLIP_BYTES)],
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


def measure(urls: dict[str, str], seconds: int, rounds: int):
    """Each measure on each URL in turn, `rounds` times; the best run of each."""
    best: dict[str, dict[str, Wrk]] = {}
    for range_header, label in MEASURES:
        print(f"bench: {label}", flush=True)
        runs = {
            name: partial(wrk, url, WRK_CONNECTIONS, seconds, range_header)
            for name, url in urls.items()
        }
        best[label] = best_of(runs, lambda run: run.megabytes_per_second, rounds)
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
    args = command_line(__doc__, BENCH / "storage-results.md", OUT)
    ensure_tools("wrk", "nginx", "curl")
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if moto is None:
        sys.exit("bench: needs moto_server (pip install -r requirements-dev.txt)")
    fresh_directory(OUT)
    wav = OUT / "bench.wav"
    write_wav(wav, CLIP_BYTES)
    with ExitStack() as servers:
        s3 = servers.enter_context(
            serve(
                lambda port: [moto, "-H", HOST, "-p", str(port)],
                OUT / "moto.log",
                up="/moto-api/",
            )
        )
        requests.put(f"{s3.base}/{BUCKET}", timeout=10).raise_for_status()
        urls = {}
        for site in SITES:
            env = site_env(site, s3.base)
            clip_id, name = upload(site, env, wav)
            app = servers.enter_context(gunicorn(env, OUT / f"gunicorn-{site}.log"))
            front = edge_nginx(OUT / site / "nginx", [app.port], OUT / site)
            log = OUT / f"nginx-{site}.log"
            nginx = servers.enter_context(serve(front, log, up="/api/v1/clips"))
            urls[site] = f"{nginx.base}/api/v1/clips/{clip_id}/stream?format=original"
        urls["s3"] = s3_client(s3.base).generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": name}, ExpiresIn=3600
        )
        for url in urls.values():  # the same bytes from all three
            answer = requests.get(url, timeout=30)
            answer.raise_for_status()
            if answer.content != wav.read_bytes():
                sys.exit(f"bench: {url} sent other bytes than the upload's")
        about = environment(
            args.out,
            clips="clips_project/gunicorn.py as shipped, CLIPS_STREAM_OFFLOAD=1, "
            "NUM_PROXIES=1, PostgreSQL on 127.0.0.1, DEBUG=0, behind deploy/nginx; "
            "disk: MEDIA_ROOT, sent by nginx's sendfile; bucket: django-storages' S3 "
            "backend, nginx fetching a presigned URL (CLIPS_S3_URL_SECONDS=60)",
            load_generator=f"wrk 4.1 (2 threads; better of {args.rounds} "
            "alternating runs), on the same cores",
            more={
                "S3 server": "moto's server mode (Python, werkzeug), in memory, "
                "on loopback"
            },
        )
        best = measure(urls, args.seconds, args.rounds)
    publish(args.out, table(COLUMNS, rows(best)), about=about)


if __name__ == "__main__":
    main()
