"""Files on disk (clips.files.storage.DiskStorage), on small real file systems: a
file shows up whole under its name, or not at all."""

import errno
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import TemporaryUploadedFile

from clips.tests.factories import LARGE_AUDIO_BYTES


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def spooled(data: bytes) -> TemporaryUploadedFile:
    """An upload as Django keeps a large one: in a temporary file on another disk."""
    upload = TemporaryUploadedFile("take.wav", "audio/wav", len(data), None)
    upload.write(data)
    upload.seek(0)
    return upload


@pytest.mark.parametrize("content", [ContentFile, spooled], ids=["memory", "temp-file"])
def test_a_write_that_fills_the_disk_leaves_no_partial_file(full_media_root, content):
    with pytest.raises(OSError) as raised:
        default_storage.save("clips/take.wav", content(LARGE_AUDIO_BYTES))
    assert raised.value.errno == errno.ENOSPC
    assert files_under(full_media_root) == []


def test_a_written_file_is_under_its_name_alone(media_root):
    name = default_storage.save("clips/take.wav", ContentFile(b"audio"))
    assert name == "clips/take.wav"
    assert files_under(media_root) == ["clips/take.wav"]


def test_a_name_taken_during_the_write_gets_another_and_leaves_the_first(media_root):
    default_storage.save("clips/take.wav", ContentFile(b"first"))
    # As if another write took the name after this one's get_available_name().
    name = default_storage._save("clips/take.wav", ContentFile(b"second"))
    assert name != "clips/take.wav"
    assert (media_root / "clips/take.wav").read_bytes() == b"first"
    assert (media_root / name).read_bytes() == b"second"
