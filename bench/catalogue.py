"""Clips' catalogue at scale: each request's latency at 100,000 and 1,000,000 clips.

    .venv/bin/python bench/catalogue.py [--sizes 100000,1000000] [--runs 40]
                                        [--quick] [--out bench/catalogue-results.md]

For each size, recreates its own database (clips_catalogue_bench), migrates it,
loads the six samples and adds the catalogue with manage.py seed_catalogue (COPY,
then ANALYZE), ANALYZEs the whole database and adds a superuser; starts gunicorn
as shipped (clips_project/gunicorn.py, DEBUG=0) with the app's list cache off
(CLIPS_LIST_CACHE_SECONDS=0), so that every request is Django's and PostgreSQL's
work. Then times each request below --runs times, one at a time over one
keep-alive connection (requests), after one untimed: the API's list (the first
page, a numbered page, one past the numbered ones, next links, a cursor in the
middle of the catalogue, searches, orders, filters), the listener's page, the
admin's change list (signed in through its login form) and one clip by id, the
floor the others are held against. Prints a table per size and, for each row that
misses its goal, the EXPLAIN ANALYZE of the slowest query of that request, made
again in-process with Django's test client on the same database; writes
bench/catalogue-results.md. Drops its database at the end (a million clips is a
gigabyte). Everything it starts, it stops.
"""

import math
import os
import random
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Literal

import psycopg
import requests
from harness import (
    BENCH,
    HOST,
    ROOT,
    Row,
    analyze,
    app_env,
    command_line,
    database_url,
    environment,
    fresh_directory,
    gunicorn,
    load_average,
    publish,
    recreate_database,
    setup_django,
    table,
    verdict,
)

# Under bench/out/ (ignored by git), beside service.py's files.
OUT = BENCH / "out" / "catalogue"
DATABASE = database_url("clips_catalogue_bench")
# Production's settings, the anonymous list cache off; the samples are only the
# audio the catalogue shares, not ingested.
ENV = app_env(
    DATABASE,
    OUT / "media",
    CLIPS_LIST_CACHE_SECONDS="0",
    CLIPS_SAMPLES_INGEST="0",
)
SIZES = (100_000, 1_000_000)
RUNS = 40
QUICK_SIZES = (3_000,)
QUICK_RUNS = 5
# p95 goals, by kind of request, at a million clips.
Kind = Literal["api", "listener", "admin", "floor"]
GOALS_MS: dict[Kind, float] = {"api": 20, "listener": 20, "admin": 100}
WALK_PAGES = 50
# The numbered pages end at clip 10,000 (clips.catalogue.pages.MAX_OFFSET).
DEEP_PAGE, PAST_NUMBERED_PAGE = 400, 40_000
PAGE_SIZE = 20
SEARCH_TERMS = 12
ADMIN = ("bench", "bench-only-not-a-secret")
COLUMNS = ["request", "answer", "median", "p95", "median / floor", "goal", "verdict"]


@dataclass(frozen=True)
class Probe:
    """A request to time; with `walk`, the next links followed from its answer."""

    label: str
    path: str
    kind: Kind
    status: int = 200
    walk: int = 0


@dataclass
class Timed:
    """A probe's times (ms), what it answered, and its slowest request's path."""

    probe: Probe
    times: list[float] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)
    answer: str = ""
    slowest: tuple[float, str] = (0.0, "")

    def add(self, path: str, ms: float, status: int) -> None:
        self.times.append(ms)
        self.statuses.add(status)
        self.slowest = max(self.slowest, (ms, path))

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times)  # nearest rank
        return ordered[math.ceil(0.95 * len(ordered)) - 1]

    @property
    def met(self) -> bool | None:
        goal = GOALS_MS.get(self.probe.kind)
        if goal is None:
            return None
        return self.statuses == {self.probe.status} and self.p95 <= goal


# --- setting up -----------------------------------------------------------------


def seed(size: int) -> str:
    """A fresh database with the samples and `size` catalogue clips, through
    manage.py as an operator would; what seed_catalogue said."""
    from django.db import connection

    connection.close()  # the database is dropped under it
    recreate_database(DATABASE)
    manage = [sys.executable, "manage.py"]
    env = {**os.environ, **ENV}
    said = ""
    for command in (
        ["migrate", "-v0"],
        ["loaddata", "sample_clips", "-v0"],
        ["seed_catalogue", "--clips", str(size)],
    ):
        print(f"bench: manage.py {' '.join(command)}", flush=True)
        ran = subprocess.run(
            manage + command, cwd=ROOT, env=env, capture_output=True, text=True
        )
        if ran.returncode != 0:
            sys.exit(f"bench: manage.py {command[0]} failed:\n{ran.stderr}")
        said = ran.stdout.strip()
    analyze()
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser(ADMIN[0], "", ADMIN[1])
    return said


def search_terms(count: int) -> list[str]:
    """Words of seed_catalogue's vocabulary, drawn with a fixed seed: three of
    its made-up names (rare), the rest from its other lists."""
    from clips.management.commands import seed_catalogue as vocabulary

    lists = [*vocabulary.WORD_LISTS.values(), *vocabulary.STYLES.values()]
    common = {
        word.lower()
        for words in lists
        if words not in (vocabulary.NAMES, vocabulary.WHERE, vocabulary.GENRES)
        for phrase in words
        for word in re.findall(r"[^\W\d_]{4,}", phrase)
    }
    rng = random.Random(20_261_201)  # noqa: S311 (the same words every run)
    names = rng.sample(vocabulary.NAMES, 3)
    return rng.sample(sorted(common), count - len(names)) + [n.lower() for n in names]


def middle() -> tuple[int, str]:
    """The clip in the middle of the catalogue by id, and the cursor of the page
    after it in the default order: what a next link deep in the list carries,
    made by the app's own clips.catalogue.pages."""
    from django.db.models import Max, Min

    from clips.catalogue import pages
    from clips.models import Clip

    span = Clip.objects.aggregate(first=Min("pk"), last=Max("pk"))
    clip = Clip.objects.filter(pk__gte=(span["first"] + span["last"]) // 2)
    clip = clip.order_by("pk").first()
    order = pages.Order.of(["-created_at"])
    return clip.pk, order.cursor(order.position(clip))


def admin_column(name: str) -> int:
    """The admin change list's `o` index of a column (1-based, as its links)."""
    from django.contrib import admin

    from clips.models import Clip

    return list(admin.site._registry[Clip].list_display).index(name) + 1


def probes(size: int, clip_id: int, deep_cursor: str, terms: list[str]) -> list[Probe]:
    api = "/api/v1/clips"
    numbered = 200 if size > (DEEP_PAGE - 1) * PAGE_SIZE else 404
    # Past the numbered pages: a 400 that says to follow next, or a 404 past the
    # last clip.
    past = 400 if size > (PAST_NUMBERED_PAGE - 1) * PAGE_SIZE else 404
    plays = admin_column("play_count")
    return [
        Probe("GET /api/v1/clips (first page)", api, "api"),
        Probe(f"?page={DEEP_PAGE}", f"{api}?page={DEEP_PAGE}", "api", numbered),
        Probe(
            f"?page={PAST_NUMBERED_PAGE}",
            f"{api}?page={PAST_NUMBERED_PAGE}",
            "api",
            past,
        ),
        Probe(f"next links, pages 2-{WALK_PAGES + 1}", api, "api", walk=WALK_PAGES),
        Probe(
            "?cursor= (a next link from the middle of the catalogue)",
            f"{api}?cursor={deep_cursor}",
            "api",
        ),
        Probe("?search=rain", f"{api}?search=rain", "api"),
        Probe("?search=zzzz-nothing", f"{api}?search=zzzz-nothing", "api"),
        Probe("?search=piano warm", f"{api}?search=piano+warm", "api"),
        *(Probe(f"?search={term}", f"{api}?search={term}", "api") for term in terms),
        Probe("?ordering=-play_count", f"{api}?ordering=-play_count", "api"),
        Probe("?ordering=title", f"{api}?ordering=title", "api"),
        Probe(
            "?genre=jazz&ordering=-play_count",
            f"{api}?genre=jazz&ordering=-play_count",
            "api",
        ),
        Probe(
            "?duration_min=100&duration_max=120&ordering=duration",
            f"{api}?duration_min=100&duration_max=120&ordering=duration",
            "api",
        ),
        Probe("listener's page /", "/", "listener"),
        Probe("/?q=rain", "/?q=rain", "listener"),
        Probe("admin /admin/clips/clip/", "/admin/clips/clip/", "admin"),
        Probe("admin ?q=rain", "/admin/clips/clip/?q=rain", "admin"),
        Probe("admin ?o=1 (title)", "/admin/clips/clip/?o=1", "admin"),
        Probe(
            f"admin ?o=-{plays} (most played)",
            f"/admin/clips/clip/?o=-{plays}",
            "admin",
        ),
        Probe(f"GET /api/v1/clips/{clip_id} (the floor)", f"{api}/{clip_id}", "floor"),
    ]


def admin_session(base: str) -> requests.Session:
    """Signed in through the admin's login form. DEBUG=0 makes the cookies Secure
    and this is plain http, so requests would not send them: sent by hand."""
    session = requests.Session()
    login = f"{base}/admin/login/"
    page = session.get(login, timeout=30)
    token = page.cookies["csrftoken"]
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    signed_in = session.post(
        f"{login}?next=/admin/",
        data={
            "csrfmiddlewaretoken": form_token[1],
            "username": ADMIN[0],
            "password": ADMIN[1],
            "next": "/admin/",
        },
        headers={"Cookie": f"csrftoken={token}"},
        allow_redirects=False,
        timeout=30,
    )
    if signed_in.status_code != 302:
        sys.exit(f"bench: the admin's login answered {signed_in.status_code}")
    session.cookies.clear()
    session.headers["Cookie"] = f"sessionid={signed_in.cookies['sessionid']}"
    return session


# --- measuring ----------------------------------------------------------------


def answered(response: requests.Response) -> str:
    """What came back, briefly: the status, and a list's count."""
    if response.headers.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        if response.ok and "count" in body:
            about = "~" if body.get("count_estimated") else ""
            return f"{response.status_code}, {about}{body['count']:,} clips"
    return str(response.status_code)


def measure(probe: Probe, base: str, session: requests.Session, runs: int) -> Timed:
    """The probe `runs` times (a walk: WALK_PAGES next links once), after an
    untimed request, each read to its end."""
    timed = Timed(probe)

    def get(url: str) -> requests.Response:
        started = time.perf_counter()
        response = session.get(url, timeout=120)  # the body read to its end
        timed.add(
            url.removeprefix(base),
            (time.perf_counter() - started) * 1000,
            response.status_code,
        )
        return response

    first = session.get(base + probe.path, timeout=120)
    timed.answer = answered(first)
    if probe.walk:
        url = first.json()["next"]
        for _ in range(probe.walk):
            if url is None:
                break
            url = get(url).json()["next"]
        return timed
    for _ in range(runs):
        get(base + probe.path)
    return timed


def explain(timed: Timed) -> str:
    """The request made again in-process (Django's test client, the same
    database): its slowest query, and that query's EXPLAIN ANALYZE."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST=HOST)
    if timed.probe.kind == "admin":
        client.force_login(get_user_model().objects.get(username=ADMIN[0]))
    path = timed.slowest[1]
    with CaptureQueriesContext(connection) as queries:
        client.get(path)
    # The count's own EXPLAIN (clips.catalogue.pages) is no query to explain.
    captured = [
        q for q in queries.captured_queries if not q["sql"].startswith("EXPLAIN")
    ]
    if not captured:
        return f"{timed.probe.label}: no SQL"
    slowest = max(captured, key=lambda query: float(query["time"]))
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {slowest['sql']}")
        plan = "\n".join(line for (line,) in cursor.fetchall())
    took = float(slowest["time"]) * 1000
    return (
        f"**{timed.probe.label}** (`{path}`): the slowest of its "
        f"{len(queries.captured_queries)} queries, {took:.0f} ms in-process:\n\n"
        f"```sql\n{slowest['sql']}\n```\n\n```\n{plan}\n```"
    )


def run_size(size: int, runs: int) -> tuple[str, list[Timed], str]:
    """Seed `size` clips, time every probe on them; what seeding said."""
    print(f"bench: {size:,} clips", flush=True)
    said = seed(size)
    clip_id, deep_cursor = middle()
    terms = search_terms(SEARCH_TERMS)
    results = []
    with gunicorn(ENV, OUT / f"gunicorn-{size}.log") as server:
        anonymous, admin = requests.Session(), admin_session(server.base)
        for probe in probes(size, clip_id, deep_cursor, terms):
            print(f"bench: {probe.label}", flush=True)
            session = admin if probe.kind == "admin" else anonymous
            results.append(measure(probe, server.base, session, runs))
    return said, results, load_average()


def rows(results: list[Timed]) -> list[Row]:
    floor = next(timed for timed in results if timed.probe.kind == "floor").median
    lines = []
    for timed in results:
        goal = GOALS_MS.get(timed.probe.kind)
        unexpected = timed.statuses - {timed.probe.status}
        answer = timed.answer + (
            f" (**expected {timed.probe.status}**)" if unexpected else ""
        )
        if timed.probe.walk:
            answer += f"; {len(timed.times)} pages"
        lines.append(
            [
                timed.probe.label,
                answer,
                f"{timed.median:,.1f} ms",
                f"{timed.p95:,.1f} ms",
                f"{timed.median / floor:,.1f}",
                f"p95 <= {goal:g} ms" if goal else "-",
                "-" if timed.met is None else verdict(timed.met),
            ]
        )
    return lines


def main() -> None:
    def more(parser) -> None:
        parser.add_argument(
            "--sizes",
            type=lambda text: [int(size) for size in text.split(",")],
            help="catalogue sizes, comma-separated (100000,1000000; --quick: 3000)",
        )
        parser.add_argument(
            "--runs", type=int, help=f"timed requests per row ({RUNS}; --quick: 5)"
        )

    args = command_line(
        __doc__, BENCH / "catalogue-results.md", OUT, more=more, wrk_runs=False
    )
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    runs = args.runs or (QUICK_RUNS if args.quick else RUNS)
    fresh_directory(OUT)
    setup_django(ENV)
    about = environment(
        args.out,
        clips="clips_project/gunicorn.py as shipped (cores+1 gthread workers, "
        "2 threads), PostgreSQL on 127.0.0.1, DEBUG=0, rate limits and the list "
        "cache off; seeded by manage.py seed_catalogue (default seed)",
        load_generator=f"requests, one keep-alive connection, one request at a "
        f"time, {runs} timed per row after one untimed (next links: "
        f"{WALK_PAGES} pages once); on the same cores",
    )
    del about["nginx"]  # not in this benchmark
    parts = []
    for size in sizes:
        said, results, load = run_size(size, runs)
        missed = [timed for timed in results if timed.met is False]
        parts += [
            f"### {size:,} clips\n\n{said} Load average after: {load}.",
            table(COLUMNS, rows(results)),
        ]
        if missed:
            parts.append(
                "Missed rows, the slowest query of each and its plan:\n\n"
                + "\n\n".join(explain(timed) for timed in missed)
            )
    terms = ", ".join(search_terms(SEARCH_TERMS))
    parts.append(f"Search terms from seed_catalogue's vocabulary: {terms}.")
    from django.db import connection

    connection.close()
    with psycopg.connect(database_url("postgres"), autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{DATABASE.rsplit("/", 1)[1]}"')
    publish(args.out, *parts, about=about)


if __name__ == "__main__":
    main()
