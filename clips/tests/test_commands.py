"""manage.py ingest: (re)processes existing clips, here or through the queue;
manage.py sweep_files: deletes the files no row names."""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command

from clips.models import Clip, ClipStatus, RenditionName
from clips.tests.audio import tone
from clips.tests.factories import ClipFactory

pytestmark = pytest.mark.django_db


def ingest(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("ingest", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_samples_get_previews_and_waveforms_and_stay_as_they_were():
    call_command("loaddata", "sample_clips", verbosity=0)
    before = {clip.pk: clip.duration for clip in Clip.objects.all()}
    out, err = ingest()
    assert out == "6 clips: 0 pending, 6 ready, 0 failed.\n"
    assert "[##############################] 6/6" in err
    for clip in Clip.objects.all():
        assert clip.status == ClipStatus.READY
        assert clip.duration == pytest.approx(before[clip.pk], abs=0.1)
        assert clip.duration_corrected_from is None
        assert {r.name for r in clip.renditions.all()} == {
            RenditionName.PREVIEW,
            RenditionName.OPUS,
            RenditionName.WAVEFORM,
        }


def test_only_the_given_clips_or_statuses_are_ingested():
    failed = ClipFactory(audio_file__data=tone("flac"), status=ClipStatus.FAILED)
    untouched = ClipFactory(audio_file__data=tone("flac"))
    out, _ = ingest("--status", "failed")
    assert out == "1 clips: 0 pending, 1 ready, 0 failed.\n"
    failed.refresh_from_db()
    untouched.refresh_from_db()
    assert failed.codec == "flac"
    assert untouched.codec == ""
    ingest(str(untouched.pk))
    untouched.refresh_from_db()
    assert untouched.codec == "flac"


def test_queue_hands_the_clips_to_the_task_queue():
    clip = ClipFactory(audio_file__data=b"not audio", status=ClipStatus.PENDING)
    out, _ = ingest("--queue")
    assert out == "1 clips queued.\n"
    clip.refresh_from_db()
    assert clip.status == ClipStatus.FAILED  # eager here: the task ran at once


def sweep(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("sweep_files", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_sweep_deletes_only_the_files_no_row_names():
    clip = ClipFactory(audio_file__data=tone("flac"))
    orphan = default_storage.save("renditions/ab/orphan.json", ContentFile(b"{}"))
    out, err = sweep("--min-age", "0", "--dry-run")
    assert out == f"{orphan}\n2 files: 1 would go, 1 kept.\n"
    assert "] 2/2" in err
    assert default_storage.exists(orphan)
    out, _ = sweep("--min-age", "0")
    assert out == f"{orphan}\n2 files: 1 deleted, 1 kept.\n"
    assert not default_storage.exists(orphan)
    assert default_storage.exists(clip.audio_file.name)


def test_sweep_keeps_a_new_file_whose_row_may_not_be_committed_yet():
    orphan = default_storage.save("clips/just-uploaded.wav", ContentFile(b"RIFF"))
    out, _ = sweep()  # --min-age 3600
    assert out == "1 files: 0 deleted, 1 kept.\n"
    assert default_storage.exists(orphan)
