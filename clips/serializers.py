from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clips.models import Clip


class ClipInputSerializer(serializers.ModelSerializer):
    """What a curator sends to add a clip; field rules come from the model."""

    class Meta:
        model = Clip
        fields = [
            "title",
            "description",
            "genre",
            "duration",
            "audio_url",
            "audio_file",
        ]
        extra_kwargs = {"audio_file": {"write_only": True}}


class ClipSerializer(serializers.ModelSerializer):
    play_count = serializers.IntegerField(read_only=True)
    last_played_at = serializers.DateTimeField(read_only=True, allow_null=True)
    source = serializers.SerializerMethodField()
    audio_url = serializers.SerializerMethodField()
    stream_url = serializers.SerializerMethodField()
    stats_url = serializers.SerializerMethodField()
    waveform_url = serializers.SerializerMethodField()

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
        }

    @extend_schema_field(serializers.ChoiceField(choices=["file", "url"]))
    def get_source(self, clip: Clip) -> str:
        return "url" if clip.is_remote else "file"

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_audio_url(self, clip: Clip) -> str | None:
        return clip.audio_url or None

    def get_stream_url(self, clip: Clip) -> str:
        return self._absolute("clip-stream", clip)

    def get_stats_url(self, clip: Clip) -> str:
        return self._absolute("clip-stats", clip)

    def get_waveform_url(self, clip: Clip) -> str:
        return self._absolute("clip-waveform", clip)

    def _absolute(self, view_name: str, clip: Clip) -> str:
        # reverse() and build_absolute_uri() cost more than all other fields of a
        # clip together: work each URL out once per response, then put in the id.
        templates = self.__dict__.setdefault("_url_templates", {})
        if view_name not in templates:
            url = reverse(view_name, kwargs={"pk": 0})
            request = self.context.get("request")
            url = request.build_absolute_uri(url) if request else url
            templates[view_name] = url.rpartition("/0/")
        before, _, after = templates[view_name]
        return f"{before}/{clip.pk}/{after}"


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


class WaveformSerializer(serializers.Serializer):
    """BBC audiowaveform's JSON data format, version 2 (clips.ingest.Waveform)."""

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
    """The one error shape (clips.errors), for the OpenAPI schema."""

    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
