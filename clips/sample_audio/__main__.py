"""Synthesise the six sample MP3s again and make the fixture tell their true sizes.

    python -m clips.sample_audio            # all six
    python -m clips.sample_audio rain ...   # some of them

Writes clips/sample_audio/<name>.mp3, then `size_bytes` and `duration` of the
matching clips in fixtures/sample_clips.json.
"""

import json
import sys
import time
from pathlib import Path

from clips.sample_audio import DIRECTORY, NAMES
from clips.sample_audio.mp3 import decoded_seconds
from clips.sample_audio.pieces import render

FIXTURE = DIRECTORY.parents[1] / "fixtures" / "sample_clips.json"


def fixture_update(sizes: dict[str, tuple[int, float]], fixture: Path) -> None:
    """Set each rebuilt sample's size_bytes and duration (to 0.1 s) in the fixture."""
    rows = json.loads(fixture.read_text())
    for row in rows:
        name = Path(row["fields"]["audio_file"]).stem
        if name in sizes:
            size, seconds = sizes[name]
            row["fields"]["size_bytes"] = size
            row["fields"]["duration"] = round(seconds, 1)
    fixture.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")


def main(names: list[str]) -> None:
    unknown = set(names) - set(NAMES)
    if unknown:
        sys.exit(f"unknown sample(s): {', '.join(sorted(unknown))}; known: {NAMES}")
    sizes = {}
    for name in names or NAMES:
        started = time.perf_counter()
        data = render(name)
        path = DIRECTORY / f"{name}.mp3"
        path.write_bytes(data)
        seconds = decoded_seconds(data)
        sizes[name] = (len(data), seconds)
        print(
            f"{path.name}: {seconds:.2f} s, {len(data):,} bytes "
            f"({time.perf_counter() - started:.1f} s to make)",
            flush=True,
        )
    fixture_update(sizes, FIXTURE)
    print(f"updated {FIXTURE}")


if __name__ == "__main__":
    main(sys.argv[1:])
