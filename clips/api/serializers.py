"""Representations of clips, and the input the API takes, typed as the schema says.

DRF's fields are lenient where the OpenAPI schema is not: a CharField takes 5 and
str()s it, a FloatField takes true and "1_0", an IntegerField takes "1.0" and
digits of other scripts, a form field given twice is read as its last value. The
fields here take exactly what the schema (/openapi.json) calls valid.
"""

import functools
import re
from typing import Any

from django.core.validators import RegexValidator
from django.db import models
from django.http import QueryDict
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clips.models import Clip, Rendition, validate_upload_size
from clips.remote.origin import audio_url_regex
from clips.remote.url_syntax import url_syntax_problem
from clips.selectors import PREVIEWS

REPEATED = "Give this only once."
BLANK = "This field may not be blank."


def _from_text(field: serializers.Field) -> bool:
    """Query strings and forms carry only text; a JSON body carries typed values."""
    return isinstance(getattr(field.root, "initial_data", None), QueryDict)


class TextField(serializers.CharField):
    """A string as sent: not a number str()-ed, not trimmed (maxLength counts all)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class URLTextField(TextField, serializers.URLField):
    pass


class _Typed:
    """A JSON number of the field's type, or its plain ASCII spelling in text."""

    json_types: tuple[type, ...]
    spelling: re.Pattern[str]

    def to_internal_value(self, data: Any) -> Any:
        if _from_text(self):
            valid = isinstance(data, str) and self.spelling.fullmatch(data)
        else:
            valid = isinstance(data, self.json_types) and not isinstance(data, bool)
        if not valid:
            self.fail("invalid")
        return super().to_internal_value(data)


class NumberField(_Typed, serializers.FloatField):
    json_types = (int, float)
    spelling = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


class IntegerField(_Typed, serializers.IntegerField):
    json_types = (int,)
    spelling = re.compile(r"-?[0-9]+")


class OneValueEach:
    """Serializer mixin: in a query string or form, one value for each field.

    `page=1&page=2` is refused rather than read as page 2, and `page=` rather than
    read as no page (DRF skips an empty optional field), unless it may be blank.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, QueryDict):
            errors = {}
            for name, field in self.fields.items():
                values = data.getlist(name)
                if len(values) > 1:
                    errors[name] = [REPEATED]
                elif values == [""] and not getattr(field, "allow_blank", False):
                    errors[name] = [BLANK]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class ClipInputSerializer(OneValueEach, serializers.ModelSerializer):
    """A clip added by its audio URL (JSON or a form); field rules from the model."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: TextField,
        models.TextField: TextField,
        models.URLField: URLTextField,
        models.FloatField: NumberField,
    }

    class Meta:
        model = Clip
        fields = ["title", "description", "genre", "duration", "audio_url"]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # Built per request: it follows CLIPS_ORIGIN_ALLOWED_HOSTS.
        fields["audio_url"].validators.append(
            RegexValidator(
                audio_url_regex(),
                message="Give an http(s) URL of an allowed audio host, by name.",
                code="audio_url",
            )
        )
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Exactly one audio source; an empty audio_url counts as none."""
        sources = [name for name in ("audio_file", "audio_url") if attrs.get(name)]
        if len(sources) == 2:
            raise serializers.ValidationError(
                "Give an audio_file or an audio_url, not both.", code="audio_source"
            )
        if not sources:
            raise serializers.ValidationError(
                "Give an audio_url, or upload an audio_file as multipart.",
                code="audio_source",
            )
        return attrs


class ClipUploadInputSerializer(ClipInputSerializer):
    """A clip added by uploading its audio (multipart); audio_url may only be empty."""

    class Meta(ClipInputSerializer.Meta):
        fields = [*ClipInputSerializer.Meta.fields, "audio_file"]
        extra_kwargs = {
            "audio_file": {
                "required": True,
                "write_only": True,
                # The extension is checked by clip_create(), which may take it from
                # the part's Content-Type.
                "validators": [validate_upload_size],
            }
        }


class ClipChangeInputSerializer(OneValueEach, serializers.ModelSerializer):
    """What a curator may change of a clip through the API (PATCH): its text,
    genre and where its preview starts (null: at its loudest stretch)."""

    serializer_field_mapping = ClipInputSerializer.serializer_field_mapping

    class Meta:
        model = Clip
        fields = ["title", "description", "genre", "preview_start"]


class RenditionSerializer(serializers.ModelSerializer):
    """A preview a player may choose, with how to stream it."""

    format = serializers.CharField(source="name", help_text="The stream's ?format=.")
    size_bytes = serializers.IntegerField()
    stream_url = serializers.SerializerMethodField()

    class Meta:
        model = Rendition
        fields = [
            "format",
            "content_type",
            "codec",
            "bit_rate",
            "size_bytes",
            "loudness_lufs",
            "true_peak_dbtp",
            "stream_url",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "loudness_lufs": {"help_text": "Integrated loudness of the file (LUFS)."},
            "true_peak_dbtp": {"help_text": "True peak of the file (dBTP)."},
        }

    def get_stream_url(self, rendition: Rendition) -> str:
        stream_url = self.context["stream_url_of"](rendition.clip_id)
        return f"{stream_url}?format={rendition.name}"


class PreviewSerializer(serializers.Serializer):
    """The excerpt of the audio the previews are."""

    start = serializers.FloatField(help_text="Seconds into the audio.")
    duration = serializers.FloatField()
    chosen_by = serializers.ChoiceField(
        choices=["curator", "loudness"],
        help_text=(
            "What chose the start of the previews served: curator (preview_start) "
            "or loudness (the clip's loudest stretch)."
        ),
    )
    rendering = serializers.BooleanField(
        help_text=(
            "True while previews for a newer start or setting are being made; "
            "until then start, duration and chosen_by describe the ones served."
        )
    )


class ClipSerializer(serializers.ModelSerializer):
    play_count = serializers.IntegerField(read_only=True)
    last_played_at = serializers.DateTimeField(read_only=True, allow_null=True)
    source = serializers.SerializerMethodField()
    audio_url = serializers.SerializerMethodField()
    stream_url = serializers.SerializerMethodField()
    stats_url = serializers.SerializerMethodField()
    waveform_url = serializers.SerializerMethodField()
    preview = serializers.SerializerMethodField()
    renditions = serializers.SerializerMethodField()

    class Meta:
        model = Clip
        fields = [
            "id",
            "title",
            "description",
            "genre",
            "duration",
            "source",
            "audio_url",
            "content_type",
            "size_bytes",
            "status",
            "failure_reason",
            "codec",
            "sample_rate",
            "channels",
            "bit_rate",
            "duration_corrected_from",
            "loudness_lufs",
            "true_peak_dbtp",
            "preview_start",
            "preview",
            "renditions",
            "play_count",
            "last_played_at",
            "created_at",
            "updated_at",
            "stream_url",
            "stats_url",
            "waveform_url",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "failure_reason": {"help_text": "Why the ingest failed; empty otherwise."},
            "duration_corrected_from": {
                "help_text": (
                    "The duration the curator gave, when the measured one (duration) "
                    "differed by more than 1 s and replaced it; null otherwise."
                )
            },
            "loudness_lufs": {
                "help_text": "The audio's integrated loudness (LUFS, EBU R128)."
            },
            "true_peak_dbtp": {"help_text": "The audio's true peak (dBTP)."},
            "preview_start": {
                "help_text": (
                    "The curator's start of the preview (seconds); null: the "
                    "clip's loudest stretch."
                )
            },
        }

    @extend_schema_field(PreviewSerializer(allow_null=True))
    def get_preview(self, clip: Clip) -> dict | None:
        """The excerpt, from the previews made; null before the first."""
        made = next(iter(self._previews(clip)), None)
        if made is None or made.excerpt_start is None:
            return None
        # From the files served, not from today's choice: a new start is not
        # the preview's until its render is done.
        loudest = made.excerpt_start == (clip.loudest_start or 0.0)
        return {
            "start": made.excerpt_start,
            "duration": made.excerpt_duration,
            "chosen_by": "loudness" if loudest else "curator",
            "rendering": clip.preview_owed,
        }

    @extend_schema_field(RenditionSerializer(many=True))
    def get_renditions(self, clip: Clip) -> list[dict]:
        # One serializer for the whole response: making one for each clip (its
        # fields are copied each time) cost more than the rest of the clip.
        renditions = self.__dict__.get("_renditions")
        if renditions is None:
            stream_url_of = functools.partial(self._absolute, "clip-stream")
            renditions = RenditionSerializer(context={"stream_url_of": stream_url_of})
            self.__dict__["_renditions"] = renditions
        return [renditions.to_representation(each) for each in self._previews(clip)]

    @staticmethod
    def _previews(clip: Clip) -> list[Rendition]:
        # clips.selectors.clip_queryset fetches them with the page.
        previews = getattr(clip, "previews", None)
        if previews is None:
            previews = list(clip.renditions.filter(name__in=PREVIEWS).order_by("name"))
        return previews

    @extend_schema_field(serializers.ChoiceField(choices=["file", "url"]))
    def get_source(self, clip: Clip) -> str:
        return "url" if clip.is_remote else "file"

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_audio_url(self, clip: Clip) -> str | None:
        # A URL stored before today's rule may hold credentials or read two ways
        # (`manage.py check --database default` lists them): never shown.
        if not clip.audio_url or url_syntax_problem(clip.audio_url):
            return None
        return clip.audio_url

    def get_stream_url(self, clip: Clip) -> str:
        return self._absolute("clip-stream", clip.pk)

    def get_stats_url(self, clip: Clip) -> str:
        return self._absolute("clip-stats", clip.pk)

    def get_waveform_url(self, clip: Clip) -> str:
        return self._absolute("clip-waveform", clip.pk)

    def _absolute(self, view_name: str, pk: int) -> str:
        # reverse() and build_absolute_uri() cost more than all other fields of a
        # clip together: work each URL out once per response, then put in the id.
        templates = self.__dict__.setdefault("_url_templates", {})
        if view_name not in templates:
            url = reverse(view_name, kwargs={"pk": 0})
            request = self.context.get("request")
            url = request.build_absolute_uri(url) if request else url
            templates[view_name] = url.rpartition("/0/")
        before, _, after = templates[view_name]
        return f"{before}/{pk}/{after}"


class HeardRangeField(serializers.ListField):
    """[start, end]: seconds of the clip's audio played, start <= end."""

    child = NumberField(min_value=0)

    def __init__(self, **kwargs) -> None:
        super().__init__(min_length=2, max_length=2, **kwargs)

    def to_internal_value(self, data: Any) -> tuple[float, float]:
        values = super().to_internal_value(data)
        if len(values) != 2:  # min_length and max_length are checked after this
            raise serializers.ValidationError("A range is two numbers: [start, end].")
        start, end = values
        if end < start:
            raise serializers.ValidationError("A range ends at or after its start.")
        return start, end


class ListenProgressInputSerializer(serializers.Serializer):
    heard = serializers.ListField(
        child=HeardRangeField(),
        max_length=100,
        help_text=(
            "The ranges of the clip this listen played, as [start, end] in seconds "
            "of the clip's audio (its original's timeline, as the waveform)."
        ),
    )
    ended = serializers.BooleanField(
        default=False,
        help_text=(
            "True on a report sent as the listen ends (the player ended, the page "
            "goes): the first such report counts the listen in Prometheus."
        ),
    )


class ListeningSerializer(serializers.Serializer):
    listens = serializers.IntegerField(help_text="Counted listens that sent progress.")
    completion_rate = serializers.FloatField(
        allow_null=True,
        help_text="The share of them that heard at least 90% of what they streamed.",
    )
    median_heard_seconds = serializers.FloatField(allow_null=True)
    retention = serializers.ListField(
        child=serializers.FloatField(),
        min_length=20,
        max_length=20,
        help_text=(
            "For each twentieth of the stream (the preview's excerpt, else the "
            "clip), the share of those listens that heard some of it."
        ),
    )


class DailyPlaysSerializer(serializers.Serializer):
    date = serializers.DateField()
    plays = serializers.IntegerField()
    listeners = serializers.IntegerField(help_text="Distinct listeners that day.")


class ClipStatsSerializer(serializers.Serializer):
    clip_id = serializers.IntegerField()
    play_count = serializers.IntegerField()
    last_played_at = serializers.DateTimeField(allow_null=True)
    listeners = serializers.IntegerField(
        help_text=(
            "Distinct listeners over the days of plays_per_day; an anonymous "
            "listener counts once per UTC day heard."
        )
    )
    plays_per_day = DailyPlaysSerializer(many=True)
    listening = ListeningSerializer(help_text="How far listeners get.")


class WaveformSerializer(serializers.Serializer):
    """BBC audiowaveform's JSON data format, version 2
    (clips.ingest.analysis.Waveform)."""

    version = serializers.IntegerField()
    channels = serializers.IntegerField()
    sample_rate = serializers.IntegerField()
    samples_per_pixel = serializers.IntegerField()
    bits = serializers.IntegerField()
    length = serializers.IntegerField(help_text="Number of (min, max) pairs.")
    data = serializers.ListField(
        child=serializers.IntegerField(min_value=-128, max_value=127),
        help_text="min0, max0, min1, max1, ... of the mono mix, 8-bit.",
    )


class ErrorSerializer(serializers.Serializer):
    """The one error shape (clips.api.errors), for the OpenAPI schema."""

    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
