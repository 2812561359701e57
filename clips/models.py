import re

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.validators import (
    FileExtensionValidator,
    MaxValueValidator,
    MinValueValidator,
    URLValidator,
)
from django.db import models
from django.utils import timezone
from django_prometheus.models import ExportModelOperationsMixin

from clips.remote.origin import OriginBlocked, check_url

# Longest clip a curator may add: this is a preview library, not a podcast host.
MAX_DURATION_SECONDS = 3600

# Extensions of uploaded audio and the content type each is served with.
AUDIO_CONTENT_TYPES = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".webm": "audio/webm",
}


def validate_upload_size(file: File) -> None:
    if file.size > settings.CLIPS_MAX_UPLOAD_BYTES:
        raise ValidationError(
            "Audio files are limited to %(limit)d bytes.",
            code="file_too_large",
            params={"limit": settings.CLIPS_MAX_UPLOAD_BYTES},
        )


# Unicode's bidirectional formatting characters (Bidi_Control), as the inside of a
# regular expression's character class; the API's schema states the same class.
# Invisible, they make text read otherwise than it is: "Invoice\u202egnp.mp3" shows
# as "Invoice3pm.png".
BIDI_CONTROLS = r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_BIDI_CONTROL = re.compile(f"[{BIDI_CONTROLS}]")


def validate_no_bidi_controls(text: str) -> None:
    """Refuse the invisible characters that reorder text, in what curators type."""
    if found := _BIDI_CONTROL.search(text):
        raise ValidationError(
            "Remove the invisible bidirectional control character U+%(code)04X: "
            "it makes text read otherwise than it is.",
            code="bidi_control",
            params={"code": ord(found.group())},
        )


def validate_fetchable_url(url: str) -> None:
    """Refuse URLs the stream view would refuse to fetch (e.g. http://127.0.0.1/)."""
    try:
        check_url(url)
    except OriginBlocked as blocked:
        raise ValidationError(str(blocked), code="origin_blocked") from blocked


class Genre(models.TextChoices):
    AMBIENT = "ambient", "Ambient"
    ACOUSTIC = "acoustic", "Acoustic"
    CLASSICAL = "classical", "Classical"
    ELECTRONIC = "electronic", "Electronic"
    FIELD_RECORDING = "field-recording", "Field recording"
    HIP_HOP = "hip-hop", "Hip-hop"
    JAZZ = "jazz", "Jazz"
    POP = "pop", "Pop"
    ROCK = "rock", "Rock"
    TECH_HOUSE = "tech-house", "Tech house"
    OTHER = "other", "Other"


# A clip's counts of plays: the play rule's one statement writes them (clips.plays).
PLAY_COUNTS = ("play_count", "last_played_at")
# Columns of a clip that Clip.save() leaves alone: the play counts, and the search
# vector PostgreSQL keeps.
WRITTEN_ELSEWHERE = frozenset({*PLAY_COUNTS, "search_vector"})


class ClipStatus(models.TextChoices):
    PENDING = "pending", "Pending: its audio is being read"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed: its audio could not be read"


class Clip(ExportModelOperationsMixin("clip"), models.Model):
    """A short audio preview: an uploaded file or a remote http(s) URL, never both."""

    # What curators type; the other text fields are set by the service or the ingest.
    title = models.CharField(max_length=200, validators=[validate_no_bidi_controls])
    description = models.TextField(
        blank=True, max_length=5000, validators=[validate_no_bidi_controls]
    )
    genre = models.CharField(max_length=20, choices=Genre.choices)
    duration = models.FloatField(
        help_text="Length in seconds.",
        validators=[MinValueValidator(0.1), MaxValueValidator(MAX_DURATION_SECONDS)],
    )
    audio_file = models.FileField(
        upload_to="clips/",
        blank=True,
        max_length=255,
        validators=[
            FileExtensionValidator([ext.lstrip(".") for ext in AUDIO_CONTENT_TYPES]),
            validate_upload_size,
        ],
    )
    audio_url = models.URLField(
        blank=True,
        max_length=2000,
        validators=[URLValidator(schemes=["http", "https"]), validate_fetchable_url],
        help_text="Remote http(s) audio, streamed through by the service.",
    )
    content_type = models.CharField(max_length=100, blank=True)
    # SHA-256 of the uploaded file, the stream's ETag: it changes with the content,
    # whatever the size and mtime. Empty until known (filled on first stream).
    audio_digest = models.CharField(max_length=64, blank=True, editable=False)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    # Set by the ingest (clips.ingest.pipeline): listeners see ready clips only.
    status = models.CharField(
        max_length=10,
        choices=ClipStatus.choices,
        default=ClipStatus.PENDING,
        db_index=True,
        editable=False,
    )
    failure_reason = models.CharField(max_length=500, blank=True, editable=False)
    # What decoding the audio found; empty until then.
    codec = models.CharField(max_length=50, blank=True, editable=False)
    sample_rate = models.PositiveIntegerField(null=True, blank=True, editable=False)
    channels = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    bit_rate = models.PositiveIntegerField(null=True, blank=True, editable=False)
    # The curator's duration, when the measured one replaced it (off by more than 1 s).
    duration_corrected_from = models.FloatField(null=True, blank=True, editable=False)
    ingested_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The outbox (clips.ingest.outbox): a pending clip is an ingest owed. When the
    # broker last took its ingest, when a worker last started it, and how many
    # times one started it, for this audio.
    ingest_queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    ingest_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    ingest_starts = models.PositiveSmallIntegerField(default=0, editable=False)
    # The preview (clips.ingest.preview): an excerpt starting at the curator's
    # preview_start, else at loudest_start, the loudest window the ingest found.
    preview_start = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=(
            "Where the preview starts, in seconds of the audio; empty: at its "
            "loudest stretch."
        ),
    )
    loudest_start = models.FloatField(null=True, blank=True, editable=False)
    # A ready clip whose previews are to be rendered again (a new start, a new
    # target): the outbox queues it as it queues a pending clip.
    preview_owed = models.BooleanField(default=False, editable=False)
    # The original's integrated loudness (LUFS) and true peak (dBTP), as measured.
    loudness_lufs = models.FloatField(null=True, blank=True, editable=False)
    true_peak_dbtp = models.FloatField(null=True, blank=True, editable=False)
    # Written by the play rule's one statement (clips.plays) and by nothing else:
    # Clip.save() leaves them out. On the row, so that "most played" is an index.
    play_count = models.PositiveBigIntegerField(default=0, editable=False)
    last_played_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Title (weight A) and description (B) as PostgreSQL's full-text search reads
    # them, kept by a trigger (migration 0016); unused, and empty, on SQLite.
    search_vector = SearchVectorField(null=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Each order of the catalogue is an index, alone and within a genre, the id
        # last so that a page ends somewhere exact (clips.catalogue). Search's GIN
        # index on search_vector is PostgreSQL's only: migration 0016 makes it.
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="clip_newest_first"),
            models.Index(fields=["title", "id"], name="clip_title"),
            models.Index(fields=["duration", "id"], name="clip_duration"),
            models.Index(fields=["play_count", "id"], name="clip_plays"),
            models.Index(
                fields=["genre", "-created_at", "-id"], name="clip_genre_newest"
            ),
            models.Index(fields=["genre", "title", "id"], name="clip_genre_title"),
            models.Index(
                fields=["genre", "duration", "id"], name="clip_genre_duration"
            ),
            models.Index(fields=["genre", "play_count", "id"], name="clip_genre_plays"),
            # clips.files.cleanup deletes a file only once no row names it.
            models.Index(fields=["audio_file"], name="clip_audio_file"),
        ]
        constraints = [
            models.CheckConstraint(
                name="clip_has_exactly_one_audio_source",
                condition=(
                    (models.Q(audio_file="") & ~models.Q(audio_url=""))
                    | (~models.Q(audio_file="") & models.Q(audio_url=""))
                ),
                violation_error_code="audio_source",
                violation_error_message=(
                    "Give exactly one audio source: an uploaded file or an audio URL."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        # A clip read before a play was counted must not write its count back.
        if not self._state.adding:
            fields = kwargs.get("update_fields")
            if fields is None:
                fields = [
                    field.name
                    for field in self._meta.concrete_fields
                    if not field.primary_key
                ]
            kwargs["update_fields"] = [
                name for name in fields if name not in WRITTEN_ELSEWHERE
            ]
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.preview_start is not None and self.preview_start >= self.duration:
            raise ValidationError(
                {
                    "preview_start": ValidationError(
                        "The preview must start before the clip's end (%(end)s s).",
                        code="preview_start",
                        params={"end": f"{self.duration:g}"},
                    )
                }
            )

    @property
    def is_remote(self) -> bool:
        return not self.audio_file


class RenditionName(models.TextChoices):
    PREVIEW = "preview", "Web preview (MP3)"
    OPUS = "opus", "Web preview (Ogg Opus)"
    ORIGINAL = "original", "Original, fetched from the clip's URL"
    WAVEFORM = "waveform", "Waveform peaks (JSON)"


class Rendition(models.Model):
    """A file the ingest made of a clip's audio, kept in storage next to the original.

    Named by its content's digest, so a re-run of the same ingest writes nothing new.
    """

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="renditions")
    name = models.CharField(max_length=20, choices=RenditionName.choices)
    file = models.FileField(upload_to="renditions/", max_length=255)
    content_type = models.CharField(max_length=100)
    size_bytes = models.PositiveBigIntegerField()
    digest = models.CharField(max_length=64)  # SHA-256: the stream's ETag
    # The waveform's peaks in a few buckets (min0, max0, min1, ...; 8-bit), kept in
    # the row so that a page drawing many clips reads no file (clips.selectors).
    peaks = models.JSONField(null=True, blank=True)
    # An audio rendition's codec and bits per second; a preview's excerpt of the
    # original (seconds) and its measured loudness.
    codec = models.CharField(max_length=20, blank=True)
    bit_rate = models.PositiveIntegerField(null=True, blank=True)
    excerpt_start = models.FloatField(null=True, blank=True)
    excerpt_duration = models.FloatField(null=True, blank=True)
    loudness_lufs = models.FloatField(null=True, blank=True)
    true_peak_dbtp = models.FloatField(null=True, blank=True)
    # What made a preview (clips.ingest.preview.recipe): one asked for again with
    # the same recipe is not rendered again.
    recipe = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clip", "name"], name="one_rendition_of_each_name"
            )
        ]
        # Shared by clips with the same audio: which rows still name a file?
        indexes = [models.Index(fields=["file"], name="rendition_file")]

    def __str__(self) -> str:
        return f"{self.clip_id} {self.name}"


class Play(ExportModelOperationsMixin("play"), models.Model):
    """One counted listen, so stats can tell plays and listeners per day."""

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="plays")
    played_at = models.DateTimeField(default=timezone.now)
    # clips.plays.listener_of(): "user:<id>", or a keyed hash renewed every UTC day.
    # NULL for plays counted before listeners were told apart, so that
    # Count(distinct) does not lump them together as one listener.
    listener = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001

    class Meta:
        indexes = [models.Index(fields=["clip", "played_at"])]

    def __str__(self) -> str:
        return f"{self.clip} at {self.played_at:%Y-%m-%d %H:%M:%S}"


# A listen's progress: the stream's window cut into slots, 60 to a 64-bit column
# (no sign bit), and into PARTS parts of SLOTS_PER_PART slots for the curve.
HEARD_COLUMNS = ("heard_0", "heard_1", "heard_2", "heard_3")
SLOTS_PER_COLUMN = 60
HEARD_SLOTS = SLOTS_PER_COLUMN * len(HEARD_COLUMNS)
PARTS = 20
SLOTS_PER_PART = HEARD_SLOTS // PARTS


class _HeardBits(models.Func):
    """An expression over the heard columns in plain integer arithmetic, the same
    SQL on PostgreSQL and SQLite (whose bit functions differ or are missing)."""

    output_field = models.IntegerField()

    def as_sql(self, compiler, connection, **extra):
        columns = [compiler.compile(each)[0] for each in self.get_source_expressions()]
        return " + ".join(self.terms(columns)), []

    def terms(self, columns: list[str]):
        raise NotImplementedError


class SlotsHeard(_HeardBits):
    """How many slots are set: one term a bit, or PostgreSQL's bit_count."""

    def terms(self, columns: list[str]):
        for column in columns:
            for bit in range(SLOTS_PER_COLUMN):
                yield f"(({column} >> {bit}) & 1)"

    def as_postgresql(self, compiler, connection, **extra):
        # The sum of 240 terms made every write of the row about 1.5 ms of the
        # server's CPU there, bit_count (PostgreSQL 14) a few microseconds.
        columns = [compiler.compile(each)[0] for each in self.get_source_expressions()]
        return " + ".join(f"bit_count({column}::bit(64))" for column in columns), []


class PartsHeard(_HeardBits):
    """Bit i set when some slot of part i is: the retention curve's row."""

    def terms(self, columns: list[str]):
        mask = (1 << SLOTS_PER_PART) - 1
        per_column = SLOTS_PER_COLUMN // SLOTS_PER_PART
        for part in range(PARTS):
            column, shift = divmod(part, per_column)
            yield (
                f"(CASE WHEN (({columns[column]} >> {shift * SLOTS_PER_PART}) "
                f"& {mask}) <> 0 THEN {1 << part} ELSE 0 END)"
            )


class ListenProgress(models.Model):
    """What a counted listen heard of its stream (clips.listening).

    One row per counted play's listen: the same clip, listener and window start
    as its Play. The stream's window (the preview's excerpt of the original, or
    the whole clip) is cut into HEARD_SLOTS slots, set in four integers, so that
    a report merges its ranges with one bitwise OR in an upsert; the database
    keeps how many slots are set and which parts were heard beside them, so that a
    clip's stats group its rows without reading their bits.
    """

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="+")
    listener = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    # The stream's window on the original's timeline, in seconds.
    window_start = models.FloatField()
    window_seconds = models.FloatField()
    heard_0 = models.BigIntegerField(default=0)
    heard_1 = models.BigIntegerField(default=0)
    heard_2 = models.BigIntegerField(default=0)
    heard_3 = models.BigIntegerField(default=0)
    # Reports that said the listen ended: the first one is when the listen's share
    # heard goes to Prometheus (clips_listen_heard_ratio), once.
    ends_reported = models.PositiveIntegerField(default=0)
    slots_heard = models.GeneratedField(
        expression=SlotsHeard(*HEARD_COLUMNS),
        output_field=models.IntegerField(),
        db_persist=True,
    )
    parts_heard = models.GeneratedField(
        expression=PartsHeard(*HEARD_COLUMNS),
        output_field=models.IntegerField(),
        db_persist=True,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clip", "listener", "started_at"],
                name="one_progress_per_listen",
            )
        ]
        # A clip's stats read these alone (an index-only scan on PostgreSQL).
        indexes = [
            models.Index(
                fields=["clip"],
                include=["parts_heard", "slots_heard", "window_seconds"],
                name="listen_progress_stats",
            )
        ]

    def __str__(self) -> str:
        return f"{self.listener} on {self.clip_id} since {self.started_at}"


class Listen(models.Model):
    """An open listen window: this listener's play of this clip was counted then.

    Rows older than CLIPS_LISTEN_WINDOW_SECONDS are deleted (clips.plays), so
    the table holds only the windows still open.
    """

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="+")
    listener = models.CharField(max_length=64)
    started_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clip", "listener"], name="one_open_listen_per_listener"
            )
        ]
        indexes = [models.Index(fields=["started_at"], name="listen_started_at")]

    def __str__(self) -> str:
        return f"{self.listener} on {self.clip_id} since {self.started_at}"


class AddressWindow(models.Model):
    """An open window of anonymous plays from one client address on one clip.

    `address` is the day's keyed hash of the address (clips.plays), never the
    address; `plays` is how many of its listeners counted since `started_at`, at
    most CLIPS_PLAYS_PER_ADDRESS. Closed rows are deleted, as Listen's are.
    """

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    plays = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clip", "address"], name="one_open_window_per_address"
            )
        ]
        indexes = [
            models.Index(fields=["started_at"], name="address_window_started_at")
        ]

    def __str__(self) -> str:
        return f"{self.plays} plays of {self.clip_id} since {self.started_at}"


class ListenerKey(models.Model):
    """The secret that anonymous listeners are hashed with on one UTC day.

    Random, shared by every process through the database, and deleted once its
    day is over: afterwards nobody can tell which address made a play.
    """

    day = models.DateField(primary_key=True)
    key = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"listener key of {self.day}"
