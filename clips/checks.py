"""System checks that read the database (`manage.py check --database default`, and
every `manage.py migrate`)."""

from django.core.checks import CheckMessage, Tags, Warning, register
from django.db import DatabaseError

from clips.remote.url_syntax import url_syntax_problem

MAX_LISTED = 20


@register(Tags.database)
def check_audio_urls(
    app_configs: object = None, databases: list[str] | None = None, **kwargs: object
) -> list[CheckMessage]:
    """Clips whose stored audio_url today's URL rule refuses (clips.remote)."""
    from clips.models import Clip

    refused = []
    for alias in databases or []:
        remote = Clip.objects.using(alias).exclude(audio_url="").order_by("pk")
        try:
            for pk, url in remote.values_list("pk", "audio_url").iterator():
                problem = url_syntax_problem(url)
                if problem:
                    refused.append((alias, pk, problem))
        except DatabaseError:
            continue  # not migrated yet: no clips to check
    messages: list[CheckMessage] = [
        Warning(
            f"audio_url refused by today's rule ({alias} database). {problem}",
            hint=(
                "Correct it in the admin. Until then its stream answers 502 "
                "origin_blocked and the API shows audio_url as null."
            ),
            obj=f"clips.Clip:{pk}",
            id="clips.W001",
        )
        for alias, pk, problem in refused[:MAX_LISTED]
    ]
    if len(refused) > MAX_LISTED:
        messages.append(
            Warning(
                f"{len(refused) - MAX_LISTED} more clips have a refused audio_url.",
                id="clips.W001",
            )
        )
    return messages
