"""manage.py seed_catalogue --clips N: a large catalogue of ready clips, quickly.

For benchmarks and for operators trying the service at scale. Titles and
descriptions read like a real catalogue's, from word lists drawn with a Zipf-like
skew (a few words in many clips, most words in few), so that searches, genres and
orders select as they would on real data. The same --seed gives the same clips.
"""

import datetime
import itertools
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from clips.management.progress import progress_show
from clips.models import Clip, ClipStatus, Genre

# Each block of clips is drawn by a generator of its own, seeded with --seed and
# the block's number: the clips depend on the seed alone, not on the chunks below.
BLOCK = 10_000
# Rows per write into the COPY (PostgreSQL) and per bulk_create (SQLite); the
# progress bar redrawn every PROGRESS_ROWS.
WRITE_ROWS = 1_000
PROGRESS_ROWS = 50_000
INSERT_ROWS = 2_000
SPREAD = datetime.timedelta(days=3 * 365)
PLAYED_SHARE = 0.10
MAX_PLAYS = 10_000
SHORTEST, LONGEST = 5.0, 600.0
URL_AUDIO = "https://audio.example.com/catalogue/{n}.mp3"
# Rank r of a word list is drawn with weight 1 / r**ZIPF_S: the first words of each
# list below are the common ones.
ZIPF_S = 1.05


def _listed(text: str, separator: str = ",") -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(separator) if word.strip())


# No word holds a tab, newline or backslash: COPY takes the text as it is
# (clips/tests/test_seed_catalogue.py checks).
ADJECTIVES = _listed("""
    warm, deep, soft, dark, slow, bright, gentle, lazy, distant, dusty, mellow, hazy,
    lo-fi, crisp, lush, heavy, airy, quiet, dreamy, golden, cold, rainy, sunny, hollow,
    shimmering, moonlit, velvet, smoky, rusty, grainy, analog, vintage, punchy,
    driving, floating, wandering, nocturnal, humid, sparse, wide, tight, rolling,
    jagged, silky, brittle, haunted, feverish, sleepy, blissful, melancholy, frantic,
    crunchy, woozy, tape-warped, sun-bleached, frosty, restless, tender, wistful, eerie,
    cinematic, muddy, glassy, brooding, bittersweet, naïve, sombre, playful, stormy,
    weightless, murky, luminous, fragile, dense, patient, crackling, sunlit, icy, worn,
    faded, hypnotic, spacious
""")
INSTRUMENTS = _listed("""
    piano chords, piano, guitar, strings, synth pads, cello, upright bass, Rhodes,
    brushed drums, saxophone, organ, violin, acoustic guitar, trumpet, harp, flute,
    choir, marimba, vibraphone, accordion, clarinet, ukulele, music box, kalimba,
    mandolin, banjo, glockenspiel, harmonica, bells, celesta, oboe, bassoon, sitar,
    steel drums, hand drums, tabla, koto, erhu, duduk, theremin, mellotron,
    harpsichord, pipe organ, string quartet, brass section, slide guitar,
    twelve-string guitar, nylon guitar, double bass, timpani
""")
MOMENTS = _listed("""
    at dusk, at dawn, at midnight, in the rain, after hours, for a slow morning,
    by the sea, in a small café, on a Sunday, under the stars, in winter,
    before the storm, at the end of summer, in an empty hall, at the harbour,
    for late trains, in the attic, on a rooftop, in the fog, at golden hour,
    for the crème de la crème, in Señora Ruiz's kitchen, in a Paris café,
    on the Côte d'Azur, in a Zürich tram, in São Paulo, in Kraków, in Malmö,
    in Reykjavík, in Montréal, in Bogotá, in Québec
""")
SOUNDS = _listed("""
    rain, thunder, wind, birdsong, waves, crickets, footsteps, church bells,
    city traffic, a crowd, a passing train, a creek, a fireplace, a ferry horn, frogs,
    an owl, seagulls, a kettle, a typewriter, a ticking clock, market chatter,
    children playing, a fountain, cicadas, a tram, distant thunder, light rain,
    heavy rain, a hailstorm, dripping water, a river, a waterfall, a beehive,
    wind chimes, a foghorn, crows, a woodpecker, a dog barking, a steam engine,
    a subway, a ceiling fan, a washing machine, vinyl crackle,
    a radio between stations, a swing, ice cracking, snow underfoot,
    leaves rustling, a heartbeat, breathing
""")
PLACES = _listed("""
    on a tin roof, in a pine forest, at a train station, under a bridge,
    in a parking garage, on a beach, in a cathedral, in a kitchen, in a Paris café,
    at the harbour, in a bamboo grove, in a rainforest, on a balcony, in a tent,
    in a library, in a greenhouse, in a tunnel, at a night market, on a ferry,
    in a barn, on a mountain pass, in Señora Ruiz's courtyard, in a Kraków square,
    on a Zürich bridge, in a Malmö park, by a Reykjavík harbour,
    in a São Paulo street, in a Montréal alley, at a Bogotá bus stop,
    in a Québec snowfield, in the desert, by a lake, at a playground, in a stairwell
""")
# The beat-made genres: their styles, their tempos (bpm) and what a clip of one is.
STYLES = {
    Genre.TECH_HOUSE: _listed("""
        tech house, deep tech house, minimal, deep house, tribal house,
        peak-time tech house, rolling tech house, acid house
    """),
    Genre.HIP_HOP: _listed("""
        boom bap, lo-fi hip-hop, trap, jazzy hip-hop, drill, chillhop, g-funk, phonk,
        old school
    """),
    Genre.ELECTRONIC: _listed("""
        techno, synthwave, drum and bass, downtempo, breakbeat, electro, dubstep,
        garage, jungle, trip-hop, disco, ambient techno, footwork, IDM, chiptune,
        vaporwave
    """),
}
TEMPOS = {Genre.TECH_HOUSE: (120, 128), Genre.HIP_HOP: (70, 98)}
ANY_TEMPO = (80, 174)
ELEMENTS = _listed("""
    groove, loop, beat, bassline, drum loop, chord loop, break, arpeggio, drop, hook,
    riff, stab, pad, riser, fill, intro, outro, sketch, jam
""")
FILLERS = _listed(
    """
    Loops cleanly.
    Good under a podcast intro.
    Mixed for headphones.
    Recorded with a pair of small condensers.
    Mastered quietly, with room to breathe.
    One take, no edits.
    The first minute is the best part.
    Free to use in videos, with credit.
    Part of a series.
    Some hiss from the tape, left in.
    Made on a Sunday afternoon.
    Try it under a slideshow.
    Bounced from an old four-track.
    A little noisy at the start.
    Works as a bed for voice-over.
    Stereo, 44.1 kHz.
    Recorded on a phone, surprisingly clean.
    Fades in and out.
    No vocals.
    A short piece for a short film.
    Inspired by a walk home.
    Leave it on repeat.
    Made for a friend's café.
    Loud, then quiet, then loud again.
    """,
    "\n",
)
WHERE = _listed(
    """
    recorded near {name}; made in {name}; from the {name} sessions;
    for the {name} project; taped in {name}'s studio; written for {name}
""",
    ";",
)
GENRES = (
    Genre.ELECTRONIC,
    Genre.AMBIENT,
    Genre.FIELD_RECORDING,
    Genre.ACOUSTIC,
    Genre.HIP_HOP,
    Genre.TECH_HOUSE,
    Genre.POP,
    Genre.ROCK,
    Genre.JAZZ,
    Genre.CLASSICAL,
    Genre.OTHER,
)
_SYLLABLES = _listed("ka lo mi ra ven tor sel da mar qui bo lin ste ru no va", " ")


def _rare_names(count: int) -> tuple[str, ...]:
    """The long tail: made-up names (places, people, series) that few clips share,
    as a real catalogue has thousands of words."""
    rng = random.Random(0)  # noqa: S311 (the same names on every run)
    names: dict[str, None] = {}
    while len(names) < count:
        names["".join(rng.choices(_SYLLABLES, k=rng.randint(2, 4))).capitalize()] = None
    return tuple(names)


NAMES = _rare_names(3_000)
# What each clip draws from, in the order clips_draw() reads them.
WORD_LISTS: dict[str, Sequence] = {
    "genre": GENRES,
    "adjective": ADJECTIVES,
    "other adjective": ADJECTIVES,
    "instrument": INSTRUMENTS,
    "moment": MOMENTS,
    "sound": SOUNDS,
    "place": PLACES,
    "element": ELEMENTS,
    "filler": FILLERS,
    "name": NAMES,
    "where": WHERE,
}
# The long tail is flatter: no made-up name should be in one clip of ten.
_EXPONENTS = {NAMES: 0.6}
_CUMULATIVE = {
    words: list(
        itertools.accumulate(
            1 / rank ** _EXPONENTS.get(words, ZIPF_S)
            for rank in range(1, len(words) + 1)
        )
    )
    for words in {*WORD_LISTS.values(), *STYLES.values()}
}
# As a title or a sentence starts.
_CAPITAL = {word: word[0].upper() + word[1:] for word in (*ADJECTIVES, *SOUNDS)}


def _draw(rng: random.Random, words: Sequence, k: int) -> list:
    return rng.choices(words, cum_weights=_CUMULATIVE[words], k=k)


class Drawn(NamedTuple):
    """One clip's values, as this command writes them."""

    title: str
    description: str
    genre: str
    duration: float
    play_count: int
    last_played_at: datetime.datetime | None
    created_at: datetime.datetime


def clips_draw(*, count: int, seed: int, now: datetime.datetime) -> Iterator[Drawn]:
    """`count` clips created over SPREAD up to `now`, oldest first (as ids run)."""
    start = now - SPREAD
    step = SPREAD / max(count, 1)
    for first in range(0, count, BLOCK):
        size = min(BLOCK, count - first)
        rng = random.Random(f"{seed}:{first // BLOCK}")  # noqa: S311
        random_ = rng.random
        words = [_draw(rng, each, size) for each in WORD_LISTS.values()]
        styles = {genre: _draw(rng, each, size) for genre, each in STYLES.items()}
        for i, (
            genre,
            adjective,
            other,
            instrument,
            moment,
            sound,
            place,
            element,
            filler,
            name,
            where,
        ) in enumerate(zip(*words, strict=True)):
            adjective = _CAPITAL[adjective]
            if genre in styles:
                subject = f"{styles[genre][i]} {element}"
                if random_() < 0.6:  # "Deep tech house groove 124 bpm"
                    low, high = TEMPOS.get(genre, ANY_TEMPO)
                    bpm = low + int(random_() * (high - low + 1))
                    title = f"{adjective} {subject} {bpm} bpm"
                else:
                    title = f"{adjective} {subject} {moment}"
            elif genre == Genre.FIELD_RECORDING:
                subject = sound
                if random_() < 0.5:  # "Rain on a tin roof"
                    title = f"{_CAPITAL[sound]} {place}"
                else:
                    title = f"{adjective} {sound} {moment}"
            else:  # "Warm piano chords at dusk"
                subject = instrument
                title = f"{adjective} {instrument} {moment}"
            description = f"{_CAPITAL[other]} {subject}, {where.format(name=name)}."
            if random_() < 0.7:
                description = f"{description} {filler}"
            created = start + step * (first + i + random_())
            plays, last = 0, None
            if random_() < PLAYED_SHARE:
                # Pareto with a < 1: most played clips have a few plays, some
                # have thousands.
                plays = min(int(rng.paretovariate(0.8)), MAX_PLAYS)
                last = created + (now - created) * random_()
            duration = rng.lognormvariate(3.8, 0.9)  # median 45 s
            yield Drawn(
                title,
                description,
                genre.value,
                round(min(max(duration, SHORTEST), LONGEST), 1),
                plays,
                last,
                created,
            )


@dataclass(frozen=True)
class Audio:
    """The audio of an existing ready clip, which new clips share."""

    audio_file: str
    content_type: str
    audio_digest: str
    size_bytes: int | None
    codec: str
    sample_rate: int | None
    channels: int | None
    bit_rate: int | None


AUDIO_FIELDS = ("audio_url", *Audio.__dataclass_fields__)


def audio_sources() -> list[Audio]:
    """The files of the ready clips there are (the samples, say), oldest first."""
    rows = (
        Clip.objects.filter(status=ClipStatus.READY)
        .exclude(audio_file="")
        .order_by("pk")
        .values_list(*AUDIO_FIELDS[1:])
    )
    return [Audio(*row) for row in rows]


def audio_fields(audio: list[Audio]) -> Iterator[dict]:
    """Each new clip's audio: the files in turn, else a remote URL of its own."""
    if audio:
        return itertools.cycle([{"audio_url": "", **vars(each)} for each in audio])
    remote = dict.fromkeys(AUDIO_FIELDS, "") | {
        "content_type": "audio/mpeg",
        "size_bytes": None,
        "sample_rate": None,
        "channels": None,
        "bit_rate": None,
    }
    return (remote | {"audio_url": URL_AUDIO.format(n=n)} for n in itertools.count(1))


# The COPY's columns, in its order (audio's in AUDIO_FIELDS' order, then the rest of
# _copy_lines' row); the others keep their NULL.
COPY_COLUMNS = (
    "title",
    "description",
    "genre",
    "duration",
    *AUDIO_FIELDS,
    "status",
    "failure_reason",
    "ingest_starts",
    "preview_owed",
    "play_count",
    "last_played_at",
    "created_at",
    "updated_at",
    "ingested_at",
)
# What the load may use, for its transaction only.
COPY_SETTINGS = (
    # Nothing is lost if the machine dies: the command is run again.
    "SET LOCAL synchronous_commit = off",
    "SET LOCAL work_mem = '256MB'",
    "SET LOCAL maintenance_work_mem = '512MB'",
)


class Command(BaseCommand):
    help = (
        "Add N ready clips with realistic titles and descriptions (skewed word "
        "frequencies, a few accented words), genres, durations, plays, and dates "
        "over three years: a catalogue at scale for benchmarks and trials. They "
        "share the audio of the ready clips there are (e.g. loaddata sample_clips), "
        "else name remote URLs. On PostgreSQL by COPY, then VACUUM ANALYZE; when "
        "adding at least as many clips as there are, the table's indexes are built "
        "again after the load, and the table is locked until it ends."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--clips", type=int, required=True, help="How many clips to add."
        )
        parser.add_argument(
            "--seed", type=int, default=2026, help="Same seed, same clips (2026)."
        )

    def handle(self, *args, clips: int, seed: int, **options) -> None:
        if clips < 0:
            raise CommandError("--clips must be 0 or more.")
        started = time.monotonic()
        drawn = clips_draw(count=clips, seed=seed, now=timezone.now())
        audio = audio_sources()
        progress_show(self.stderr, 0, clips)
        # One transaction: all the clips or none.
        with transaction.atomic():
            if connection.vendor == "postgresql":
                self._copy(drawn, audio, clips)
            else:
                self._bulk_create(drawn, audio, clips)
        if connection.vendor == "postgresql":
            _tidy()
        seconds = time.monotonic() - started
        self.stdout.write(f"Added {clips:,} ready clips in {seconds:.1f} s.")

    def _copy(self, drawn: Iterator[Drawn], audio: list[Audio], total: int) -> None:
        """One COPY, written a few rows at a time so that PostgreSQL takes them in
        while the next are drawn; the indexes built again after it when the clips
        added are as many as those there were."""
        with connection.cursor() as cursor:
            for setting in COPY_SETTINGS:
                cursor.execute(setting)
            rebuilt = _indexes_drop(cursor) if _few_rows(cursor, total) else []
        statement = f"COPY clips_clip ({', '.join(COPY_COLUMNS)}) FROM STDIN"
        done, sources = 0, _copy_audio(audio)
        with connection.connection.cursor() as cursor, cursor.copy(statement) as copy:
            while batch := list(itertools.islice(drawn, WRITE_ROWS)):
                copy.write("".join(_copy_lines(batch, sources)))
                done += len(batch)
                if done % PROGRESS_ROWS < WRITE_ROWS or done == total:
                    progress_show(self.stderr, done, total)
        if rebuilt:
            self.stderr.write(f"Building the {len(rebuilt)} indexes again:")
            with connection.cursor() as cursor:
                for built, definition in enumerate(rebuilt, start=1):
                    cursor.execute(definition)
                    progress_show(self.stderr, built, len(rebuilt))
                # Back to deferred, as Django declares its foreign keys.
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    def _bulk_create(
        self, drawn: Iterator[Drawn], audio: list[Audio], total: int
    ) -> None:
        done, sources = 0, audio_fields(audio)
        while batch := list(itertools.islice(drawn, INSERT_ROWS)):
            Clip.objects.bulk_create(
                Clip(
                    title=clip.title,
                    description=clip.description,
                    genre=clip.genre,
                    duration=clip.duration,
                    status=ClipStatus.READY,
                    play_count=clip.play_count,
                    last_played_at=clip.last_played_at,
                    created_at=clip.created_at,
                    ingested_at=clip.created_at,
                    **fields,
                )
                for clip, fields in zip(batch, sources, strict=False)
            )
            done += len(batch)
            progress_show(self.stderr, done, total)


def _tidy() -> None:
    """The planner's statistics of the new rows; and, unless in a transaction
    (VACUUM cannot run in one), the visibility map and hint bits that a vacuum
    sets: without them no count is an index-only scan, and the first reads of
    each page write it again, until autovacuum passes (if it is on)."""
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            cursor.execute("ANALYZE clips_clip")
        else:
            cursor.execute("VACUUM (ANALYZE) clips_clip")


def _few_rows(cursor: CursorWrapper, added: int) -> bool:
    """Whether the table holds fewer clips than are added (counting up to that)."""
    cursor.execute(
        "SELECT count(*) FROM (SELECT 1 FROM clips_clip LIMIT %s) AS there", [added]
    )
    return cursor.fetchone()[0] < added


# The table's indexes that no constraint holds (the primary key stays), with how
# to make each again.
INDEXES = """
SELECT index.relname, pg_get_indexdef(index.oid)
FROM pg_index JOIN pg_class AS index ON index.oid = pg_index.indexrelid
WHERE pg_index.indrelid = 'clips_clip'::regclass
    AND NOT EXISTS (SELECT FROM pg_constraint WHERE conindid = index.oid)
ORDER BY index.relname
"""


def _indexes_drop(cursor: CursorWrapper) -> list[str]:
    """Drop the indexes for the load: PostgreSQL builds an index over a million
    rows faster than it adds them one by one ("Populating a Database" in its
    manual), the GIN index of search above all. In the load's transaction, so a
    failure leaves them as they were; meanwhile the table is locked. Returns the
    statements that make them again."""
    # Checks deferred until the commit (foreign keys of rows deleted earlier in
    # this transaction) would keep an index from being built: run them now, as
    # Django's schema editor does before it alters a table.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute(INDEXES)
    indexes = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
    return [definition for _, definition in indexes]


def _copy_audio(audio: list[Audio]) -> Iterator[str]:
    """audio_fields() in COPY's text format, each file's formatted once."""
    fields = audio_fields(audio)
    if audio:
        return itertools.cycle([_copy_row(next(fields)) for _ in audio])
    # Remote: the URL (AUDIO_FIELDS' first) is each clip's own, the rest the same.
    rest = _copy_row(next(fields)).split("\t", 1)[1]
    return (f"{URL_AUDIO.format(n=n)}\t{rest}" for n in itertools.count(1))


def _copy_row(fields: dict) -> str:
    return "\t".join(_copy_value(fields[name]) for name in AUDIO_FIELDS)


def _copy_lines(batch: list[Drawn], audio: Iterator[str]) -> Iterator[str]:
    """The rows in COPY's text format, in COPY_COLUMNS' order."""
    ready = ClipStatus.READY.value
    for clip, source in zip(batch, audio, strict=False):
        last = clip.last_played_at.isoformat() if clip.last_played_at else r"\N"
        created = clip.created_at.isoformat()
        yield (
            f"{clip.title}\t{clip.description}\t{clip.genre}\t{clip.duration}\t"
            f"{source}\t{ready}\t\t0\tf\t{clip.play_count}\t{last}\t"
            f"{created}\t{created}\t{created}\n"
        )


def _copy_value(value: object) -> str:
    if value is None:
        return r"\N"
    text = str(value)
    for char, escaped in (("\\", r"\\"), ("\t", r"\t"), ("\n", r"\n"), ("\r", r"\r")):
        text = text.replace(char, escaped)
    return text
