"""The six sample clips' audio, shipped with the project as MP3 files in this folder.

fixtures/sample_clips.json names them `samples/<name>.mp3`; when such a clip is
saved and the storage lacks its file, clips.services.sample_audio_install copies it
there. `python -m clips.sample_audio` synthesises them again (see pieces.py).
"""

from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
NAMES = (
    "ambient",
    "electronic-beats",
    "acoustic-guitar",
    "rain",
    "jazz-piano",
    "tech-house",
)
# Storage name -> the shipped file; nothing else is ever copied.
SHIPPED = {f"samples/{name}.mp3": DIRECTORY / f"{name}.mp3" for name in NAMES}
