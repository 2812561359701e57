"""Signal receivers: thin, they call services."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from clips import services
from clips.models import Clip


@receiver(post_save, sender=Clip, dispatch_uid="clips.sample_audio_install")
def clip_saved(sender: type[Clip], instance: Clip, **kwargs) -> None:
    # Also on loaddata (raw=True): the fixture's rows come without their files.
    services.sample_audio_install(clip=instance)
