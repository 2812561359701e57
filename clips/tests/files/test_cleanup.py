"""Files no row names any more leave storage after the commit, and only those."""

import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction

from clips import services
from clips.files import cleanup
from clips.ingest import pipeline
from clips.models import Clip, ClipStatus, Rendition, RenditionName
from clips.tests.audio import tone
from clips.tests.factories import ClipFactory, ingested_clip

pytestmark = pytest.mark.django_db


def stored(media_root) -> set[str]:
    """Every file in storage, by storage name."""
    return {
        path.relative_to(media_root).as_posix()
        for path in media_root.rglob("*")
        if path.is_file()
    }


def files_of(clip: Clip) -> set[str]:
    renditions = Rendition.objects.filter(clip=clip).values_list("file", flat=True)
    return {clip.audio_file.name, *renditions}


def test_deleting_a_clip_deletes_its_upload_and_renditions_after_the_commit(
    media_root, django_capture_on_commit_callbacks
):
    clip, kept = ingested_clip(), ingested_clip(tone("wav", seconds=3))
    doomed = files_of(clip)
    assert len(doomed) == 4  # upload, MP3 and Opus previews, waveform
    with django_capture_on_commit_callbacks(execute=False) as hooks:
        clip.delete()
    assert doomed <= stored(media_root)  # nothing yet: not committed
    for hook in hooks:
        hook()
    assert stored(media_root) == files_of(kept)


def test_a_rolled_back_deletion_deletes_no_file(
    media_root, django_capture_on_commit_callbacks
):
    clip = ingested_clip()
    files = files_of(clip)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        clip.delete()
        raise RuntimeError("the request failed after all")
    assert Clip.objects.exists()
    assert stored(media_root) == files


def test_new_audio_deletes_the_replaced_upload_and_its_renditions(
    media_root, django_capture_on_commit_callbacks
):
    clip = ingested_clip()
    before = files_of(clip)
    clip.audio_file = SimpleUploadedFile("new.flac", tone("flac", seconds=3))
    with django_capture_on_commit_callbacks(execute=True):
        services.clip_save(clip=clip)
    clip.refresh_from_db()
    assert clip.codec == "flac"
    after = files_of(clip)
    assert not before & after
    assert stored(media_root) == after


def test_identical_audio_shares_renditions_until_no_clip_uses_them(
    media_root, django_capture_on_commit_callbacks
):
    first, second = ingested_clip(), ingested_clip()
    shared = files_of(first) - {first.audio_file.name}
    assert shared == files_of(second) - {second.audio_file.name}
    with django_capture_on_commit_callbacks(execute=True):
        first.delete()
    assert stored(media_root) == files_of(second)
    with django_capture_on_commit_callbacks(execute=True):
        second.delete()
    assert stored(media_root) == set()


def test_ingesting_again_keeps_every_file(
    media_root, django_capture_on_commit_callbacks
):
    clip = ingested_clip()
    before = stored(media_root)
    with django_capture_on_commit_callbacks(execute=True) as hooks:
        pipeline.clip_ingest(clip_id=clip.pk)
    assert hooks  # the old rows' files were released, and kept: the new rows name them
    assert stored(media_root) == before == files_of(clip)


def test_releasing_twice_or_a_file_still_named_is_harmless(media_root):
    clip = ingested_clip()
    preview = clip.renditions.get(name=RenditionName.PREVIEW)
    preview.delete()  # its release waits for a commit that never comes here
    assert cleanup.file_release(name=preview.file.name) is True
    assert preview.file.name not in stored(media_root)
    assert cleanup.file_release(name=preview.file.name) is True  # gone already
    assert cleanup.file_release(name=clip.audio_file.name) is False
    assert stored(media_root) == files_of(clip)


def test_a_storage_error_while_deleting_is_logged_and_the_deletion_stands(
    media_root, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    clip = ingested_clip()
    files = files_of(clip)

    def storage_down(name: str) -> None:
        raise OSError("storage unreachable")

    monkeypatch.setattr(cleanup.storage, "delete", storage_down)
    with django_capture_on_commit_callbacks(execute=True):
        clip.delete()
    assert not Clip.objects.exists()
    assert stored(media_root) == files  # left over, nothing worse
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 4  # upload, MP3 and Opus previews, waveform
    assert all("storage unreachable" in str(r.args) for r in errors)


def test_an_ingest_stores_again_a_shared_file_released_while_it_ran(
    media_root, monkeypatch, django_capture_on_commit_callbacks
):
    """Clip 1 is deleted after clip 2's ingest found their preview stored."""
    first = ingested_clip()
    second = ClipFactory(audio_file__data=tone("wav"), status=ClipStatus.PENDING)
    finish = pipeline._ingest_finish

    def first_deleted_meanwhile(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            first.delete()
        assert not Rendition.objects.exists()
        assert stored(media_root) == {second.audio_file.name}
        return finish(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_ingest_finish", first_deleted_meanwhile)
    pipeline.clip_ingest(clip_id=second.pk)
    assert stored(media_root) == files_of(second)
    assert len(files_of(second)) == 4


def test_an_ingest_overtaken_by_new_audio_leaves_no_file_behind(
    media_root, monkeypatch, django_capture_on_commit_callbacks
):
    clip = ClipFactory(audio_file__data=tone("wav"), status=ClipStatus.PENDING)
    finish = pipeline._ingest_finish

    def audio_changed_meanwhile(*args, **kwargs):
        Clip.objects.filter(pk=clip.pk).update(audio_file="clips/other.wav")
        return finish(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_ingest_finish", audio_changed_meanwhile)
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.clip_ingest(clip_id=clip.pk)
    assert not Rendition.objects.exists()
    assert stored(media_root) == {clip.audio_file.name}


def advisory_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_release_waits_for_a_transaction_that_takes_the_file(media_root):
    """An ingest holding the lock commits its row first: the file stays."""
    clip = ingested_clip()
    preview = clip.renditions.get(name=RenditionName.PREVIEW)
    name = preview.file.name
    other = ClipFactory()
    taken, commit = threading.Event(), threading.Event()

    def take() -> None:
        with transaction.atomic():
            cleanup.file_lock(name)
            Rendition.objects.create(
                clip=other,
                name=RenditionName.PREVIEW,
                file=name,
                content_type=preview.content_type,
                size_bytes=preview.size_bytes,
                digest=preview.digest,
            )
            taken.set()
            commit.wait(30)
        connection.close()

    def delete_preview() -> None:
        # Autocommit: the release runs at once, and must wait for take()'s commit.
        Rendition.objects.filter(pk=preview.pk).delete()
        connection.close()

    taker = threading.Thread(target=take)
    taker.start()
    assert taken.wait(30)
    deleter = threading.Thread(target=delete_preview)
    deleter.start()
    deadline = time.monotonic() + 30
    while advisory_waiters() == 0:  # the release is waiting for the lock
        assert time.monotonic() < deadline
        time.sleep(0.05)
    commit.set()
    taker.join(30)
    deleter.join(30)
    assert not Rendition.objects.filter(pk=preview.pk).exists()
    assert Rendition.objects.filter(clip=other, file=name).exists()
    assert name in stored(media_root)
