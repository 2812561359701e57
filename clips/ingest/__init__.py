"""The ingest of new audio: decode it once (probe, previews, waveform peaks) and
store what the clip becomes. Queued by clips.tasks, run by the Celery worker."""
