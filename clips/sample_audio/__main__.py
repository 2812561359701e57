"""Synthesise the six sample MP3s again and make the fixture tell their true sizes.

    python -m clips.sample_audio            # all six
    python -m clips.sample_audio rain ...   # some of them

Writes clips/sample_audio/<name>.mp3, then what the ingest measures of each
(size_bytes, duration, codec...; status ready) into the matching clips of
fixtures/sample_clips.json, so that `loaddata sample_clips` alone gives playable clips.
"""

import json
import sys
import time
from pathlib import Path

from clips.ingest.analysis import AudioFacts, analyse
from clips.sample_audio import DIRECTORY, NAMES
from clips.sample_audio.pieces import render

FIXTURE = DIRECTORY.parents[1] / "fixtures" / "sample_clips.json"


def fixture_update(measured: dict[str, tuple[int, AudioFacts]], fixture: Path) -> None:
    """Set each rebuilt sample's size and probed facts, as the ingest stores them.

    The duration too (to the millisecond): loading the fixture again over ingested
    samples then changes nothing.
    """
    rows = json.loads(fixture.read_text())
    for row in rows:
        name = Path(row["fields"]["audio_file"]).stem
        if name in measured:
            size, facts = measured[name]
            row["fields"].update(
                size_bytes=size,
                duration=facts.duration,
                content_type=facts.content_type,
                status="ready",
                codec=facts.codec,
                sample_rate=facts.sample_rate,
                channels=facts.channels,
                bit_rate=facts.bit_rate,
            )
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
        facts = analyse(path).facts
        seconds = facts.duration
        sizes[name] = (len(data), facts)
        print(
            f"{path.name}: {seconds:.2f} s, {len(data):,} bytes "
            f"({time.perf_counter() - started:.1f} s to make)",
            flush=True,
        )
    fixture_update(sizes, FIXTURE)
    print(f"updated {FIXTURE}")


if __name__ == "__main__":
    main(sys.argv[1:])
