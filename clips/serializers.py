from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clips.models import Clip
from clips.url_syntax import url_syntax_problem


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
            "play_count",
            "last_played_at",
            "created_at",
            "updated_at",
            "stream_url",
            "stats_url",
        ]
        read_only_fields = fields

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
        return self._absolute("clip-stream", clip)

    def get_stats_url(self, clip: Clip) -> str:
        return self._absolute("clip-stats", clip)

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


class ErrorSerializer(serializers.Serializer):
    """The one error shape (clips.errors), for the OpenAPI schema."""

    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
