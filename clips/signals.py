"""Signal receivers: thin, they call services."""

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from clips import caching, services
from clips.files import cleanup
from clips.models import Clip, Rendition


@receiver(pre_save, sender=Clip, dispatch_uid="clips.play_counts_kept")
def clip_loading(sender: type[Clip], instance: Clip, raw: bool, **kwargs) -> None:
    # loaddata writes every column, not through Clip.save(): a fixture loaded
    # again (the samples at each start) must not reset the counts of plays.
    if raw:
        services.clip_counts_keep(clip=instance)


@receiver(post_save, sender=Clip, dispatch_uid="clips.sample_audio_install")
def clip_saved(sender: type[Clip], instance: Clip, raw: bool, **kwargs) -> None:
    # Also on loaddata (raw=True): the fixture's rows come without their files,
    # and without the renditions the ingest makes of them.
    services.sample_audio_install(clip=instance)
    if raw:
        services.sample_ingest_on_commit(clip=instance)


# Deletions of every kind (a queryset's, a clip's cascade, the admin's) end here.
@receiver(post_delete, sender=Clip, dispatch_uid="clips.clip_files_release")
@receiver(post_delete, sender=Rendition, dispatch_uid="clips.rendition_file_release")
def file_owner_deleted(sender: type[Clip | Rendition], instance, **kwargs) -> None:
    field = instance.audio_file if sender is Clip else instance.file
    cleanup.files_release_on_commit(names=[field.name])


# What hot paths keep of a clip (clips.caching.clip_value_keep: a stream's facts, a
# beacon's window) goes with any change to it or its renditions. The ingest's
# bulk_create of renditions comes with a save of the clip in the same transaction.
@receiver(post_save, sender=Clip, dispatch_uid="clips.clip_stream_facts_saved")
@receiver(post_delete, sender=Clip, dispatch_uid="clips.clip_stream_facts_deleted")
def clip_changed(sender: type[Clip], instance: Clip, **kwargs) -> None:
    caching.clip_changed(clip_id=instance.pk)


@receiver(post_save, sender=Rendition, dispatch_uid="clips.rendition_facts_saved")
@receiver(post_delete, sender=Rendition, dispatch_uid="clips.rendition_facts_deleted")
def rendition_changed(sender: type[Rendition], instance: Rendition, **kwargs) -> None:
    caching.clip_changed(clip_id=instance.clip_id)
